//! Shape checks and dict arguments.
//!
//! A dict argument is read once, through the mapping protocol, into an owned list of its
//! items: any `collections.abc.Mapping` is taken (as in the reference), a `dict` subclass's
//! `__getitem__` is honoured, and nothing done later (a key's `__eq__` that mutates the dict,
//! say) can change what the call works on.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};
use pyo3::PyTypeInfo;

use super::{repr, type_name, Name};
use crate::error::{Error, Result};

/// `(3,)`, `(2, 3)` or `()`, as Python prints a shape.
pub fn shape_str(s: &[usize]) -> String {
    match s {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn same_shape(func: &str, name: &Name, got: &[usize], want: &[usize]) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "{func}: {name} must have shape {}, got {}",
            shape_str(want),
            shape_str(got)
        )))
    }
}

static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A dict argument: any mapping, looked up through its own `__getitem__`.
#[derive(Clone)]
pub struct Mapping<'py> {
    obj: Bound<'py, PyAny>,
    /// The argument is exactly a `dict`: its lookups cannot run Python `__getitem__` code.
    exact: bool,
}

impl<'py> Mapping<'py> {
    /// `obj` must be a mapping; `what` describes the expected values for the message.
    pub fn new(func: &str, name: &str, what: &str, obj: &Bound<'py, PyAny>) -> Result<Self> {
        let exact = obj.is_exact_instance_of::<PyDict>();
        if !exact {
            let mapping = MAPPING
                .import(obj.py(), "collections.abc", "Mapping")
                .map_err(Error::Python)?;
            if !obj.is_instance(mapping).map_err(Error::Python)? {
                return Err(Error::Type(format!(
                    "{func}: {name} must be a dict of {what}, got {}",
                    type_name(obj)
                )));
            }
        }
        Ok(Mapping {
            obj: obj.clone(),
            exact,
        })
    }

    fn dict(&self) -> Result<&Bound<'py, PyDict>> {
        self.obj
            .cast::<PyDict>()
            .map_err(|e| Error::Python(e.into()))
    }

    pub fn len(&self) -> Result<usize> {
        if self.exact {
            return Ok(self.dict()?.len());
        }
        self.obj.len().map_err(Error::Python)
    }

    /// The value under `key`, through the mapping's own lookup.
    pub fn get(&self, key: &Bound<'py, PyAny>) -> Result<Option<Bound<'py, PyAny>>> {
        if self.exact {
            return self.dict()?.get_item(key).map_err(Error::Python);
        }
        match self.obj.get_item(key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(self.obj.py()) => Ok(None),
            Err(e) => Err(Error::Python(e)),
        }
    }

    /// The `(key, value)` pairs, copied into an owned list in the mapping's order: nothing
    /// done later (a key's `__eq__` that mutates the dict, say) changes what a call works on.
    pub fn items(&self) -> Result<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        if self.exact {
            // Copying the pairs out runs no Python code, so the dict cannot change meanwhile.
            return Ok(self.dict()?.iter().collect());
        }
        let py = self.obj.py();
        self.obj
            .call_method0(intern!(py, "items"))
            .and_then(|i| PyList::type_object(py).call1((i,)))
            .and_then(|l| l.cast_into::<PyList>().map_err(Into::into))
            .and_then(|l| {
                l.iter()
                    .map(|kv| kv.extract())
                    .collect::<PyResult<Vec<_>>>()
            })
            .map_err(Error::Python)
    }

    /// The error for `self` lacking a key of `reference`, or having one more.
    pub fn key_error(
        &self,
        func: &str,
        name: &str,
        ref_name: &str,
        reference: &Items<'py>,
    ) -> Error {
        match self.check_keys(func, name, ref_name, reference) {
            Err(e) => e,
            Ok(()) => Error::Value(format!(
                "{func}: {name} must keep its keys during the call, got them changed"
            )),
        }
    }

    /// `self` must have exactly the keys of `reference`.
    pub fn check_keys(
        &self,
        func: &str,
        name: &str,
        ref_name: &str,
        reference: &Items<'py>,
    ) -> Result<()> {
        for (key, _) in &reference.items {
            if self.get(key)?.is_none() {
                return Err(Error::Value(format!(
                    "{func}: {name} must have key {} like {ref_name}, got it missing",
                    repr(key)
                )));
            }
        }
        if self.len()? != reference.len() {
            for (key, _) in self.items()? {
                if reference.map.get(&key)?.is_none() {
                    return Err(Error::Value(format!(
                        "{func}: {name} must have only the keys of {ref_name}, got extra key {}",
                        repr(&key)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The values of `self` for the keys of `reference`, in its order, after [`check_keys`](Self::check_keys).
    pub fn values_for(
        &self,
        func: &str,
        name: &str,
        ref_name: &str,
        reference: &Items<'py>,
    ) -> Result<Vec<Bound<'py, PyAny>>> {
        self.check_keys(func, name, ref_name, reference)?;
        reference
            .items
            .iter()
            .map(|(key, _)| {
                self.get(key)?
                    .ok_or_else(|| self.key_error(func, name, ref_name, reference))
            })
            .collect()
    }
}

/// A dict argument read into an owned list of `(key, value)`.
pub struct Items<'py> {
    pub map: Mapping<'py>,
    pub items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
}

impl<'py> Items<'py> {
    pub fn read(func: &str, name: &str, what: &str, obj: &Bound<'py, PyAny>) -> Result<Self> {
        let map = Mapping::new(func, name, what, obj)?;
        let items = map.items()?;
        Ok(Items { map, items })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}
