"""Every public name, and every public method and property of a public class, has a docstring:
the API reference (``make docs``) is generated from them."""

import inspect

import gradfast
import gradfast.distributed
import pytest

MODULES = {"gradfast": gradfast, "gradfast.distributed": gradfast.distributed}


def undocumented(name: str, obj) -> list[str]:
    """``name`` and the public members of ``obj`` (if a class) whose docstring, inherited from
    a base class or not (as the API reference shows it), is missing or blank."""
    missing = [] if (inspect.getdoc(obj) or "").strip() else [name]
    if inspect.isclass(obj):
        for attr, static in ((a, inspect.getattr_static(obj, a)) for a in dir(obj) if not a.startswith("_")):
            if isinstance(static, property):
                doc = static.__doc__
            elif callable(getattr(obj, attr)):
                doc = inspect.getdoc(getattr(obj, attr))
            else:
                continue  # a plain attribute: documented by its class
            if not (doc or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_and_member_has_a_docstring(module):
    mod = MODULES[module]
    missing = [m for n in mod.__all__ for m in undocumented(f"{module}.{n}", getattr(mod, n))]
    assert missing == []


class _Base:
    """Documented."""

    def inherited(self):
        """Documented here, shown for the subclass too."""


class _Layer(_Base):
    """A layer (at module level: inspect finds an override's base by its qualified name)."""

    def inherited(self):
        pass

    def forward(self, x):
        return x

    @property
    def size(self):
        return 1

    def _private(self):
        pass


def _bare():
    pass


def test_the_check_finds_what_is_missing():
    assert undocumented("Layer", _Layer) == ["Layer.forward", "Layer.size"]
    assert undocumented("bare", _bare) == ["bare"]


def test_distributed_all_names_its_public_api():
    namespace: dict = {}
    exec("from gradfast.distributed import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(gradfast.distributed.__all__)
    for name in gradfast.distributed.__all__:
        assert getattr(gradfast, name) is getattr(gradfast.distributed, name)
