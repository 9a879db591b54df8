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

/// A dict argument read into an owned list of `(key, value)`, in the mapping's order.
pub struct Items<'py> {
    obj: Bound<'py, PyAny>,
    /// The argument is exactly a `dict`: its lookups cannot run Python `__getitem__` code.
    exact: bool,
    pub items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
}

impl<'py> Items<'py> {
    /// Reads `obj`, a mapping; `what` describes the expected values for the message.
    pub fn read(func: &str, name: &str, what: &str, obj: &Bound<'py, PyAny>) -> Result<Self> {
        let py = obj.py();
        let exact = obj.is_exact_instance_of::<PyDict>();
        if !exact {
            let mapping = MAPPING
                .import(py, "collections.abc", "Mapping")
                .map_err(Error::Python)?;
            if !obj.is_instance(mapping).map_err(Error::Python)? {
                return Err(Error::Type(format!(
                    "{func}: {name} must be a dict of {what}, got {}",
                    type_name(obj)
                )));
            }
        }
        let items = if exact {
            // Copying the pairs out runs no Python code, so the dict cannot change meanwhile.
            let d = obj.cast::<PyDict>().map_err(|e| Error::Python(e.into()))?;
            d.iter().collect()
        } else {
            obj.call_method0(intern!(py, "items"))
                .and_then(|i| PyList::type_object(py).call1((i,)))
                .and_then(|l| l.cast_into::<PyList>().map_err(Into::into))
                .and_then(|l| {
                    l.iter()
                        .map(|kv| kv.extract())
                        .collect::<PyResult<Vec<_>>>()
                })
                .map_err(Error::Python)?
        };
        Ok(Items {
            obj: obj.clone(),
            exact,
            items,
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The value under `key`, through the mapping's own lookup.
    pub fn get(&self, key: &Bound<'py, PyAny>) -> Result<Option<Bound<'py, PyAny>>> {
        if self.exact {
            let d = self
                .obj
                .cast::<PyDict>()
                .map_err(|e| Error::Python(e.into()))?;
            return d.get_item(key).map_err(Error::Python);
        }
        match self.obj.get_item(key) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(self.obj.py()) => Ok(None),
            Err(e) => Err(Error::Python(e)),
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
        if self.len() != reference.len() {
            for (key, _) in &self.items {
                if reference.get(key)?.is_none() {
                    return Err(Error::Value(format!(
                        "{func}: {name} must have only the keys of {ref_name}, got extra key {}",
                        repr(key)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The values of `self` under the keys of `keys`, in its order (after [`check_keys`](Self::check_keys)).
    pub fn values_for(
        &self,
        func: &str,
        name: &str,
        keys: &Items<'py>,
    ) -> Result<Vec<Bound<'py, PyAny>>> {
        keys.items
            .iter()
            .map(|(key, _)| {
                self.get(key)?.ok_or_else(|| {
                    Error::Value(format!(
                        "{func}: {name} must keep its keys during the call, got key {} gone",
                        repr(key)
                    ))
                })
            })
            .collect()
    }
}
