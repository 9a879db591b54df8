"""Parameter groups: per-key hyper-parameters of one optimizer (``groups=`` of every optimizer).

A group is ``{"keys": KEYS, **settings}``: ``KEYS`` a collection of keys or a callable
``(key, array) -> bool``; the settings any hyper-parameter of the optimizer but
``learning_rate``, which a group scales with ``lr_scale`` (so one schedule drives every
group). Each key takes the settings of the first group that claims it, the optimizer's own
otherwise. The specs are checked once, at construction; the assignment of a dict's keys is
resolved at the first update over those keys and kept while the keys stay the same.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .. import _validate

#: the per-key record of ``state_dict()['groups']``: the settings of the key's group
#: (``lr_scale`` and the hyper-parameters it sets), ``{}`` for a key on the optimizer's own
Settings = dict[str, Any]


class Group:
    """One checked group: what claims a key (``keys``, a frozenset or a callable) and its
    ``settings`` (``lr_scale`` first, then the hyper-parameters it sets, by name)."""

    def __init__(self, keys: frozenset | Callable[[Any, Any], Any], settings: Settings) -> None:
        self.keys, self.settings = keys, settings

    def claims(self, key, array) -> bool:
        if isinstance(self.keys, frozenset):
            return key in self.keys
        return bool(self.keys(key, array))

    def spec(self) -> dict[str, Any]:
        """The group as given (keys as a list when they were a collection)."""
        keys = sorted(self.keys, key=repr) if isinstance(self.keys, frozenset) else self.keys
        return {"keys": keys, **self.settings}


def check_groups(opt, groups: object) -> list[Group] | None:
    """The checked groups of optimizer ``opt`` (built, its hyper-parameters set), or a
    ``TypeError``/``ValueError`` naming the group and the setting."""
    fn = opt._name
    if groups is None:
        return None
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Collection):
        raise TypeError(f"{fn}: groups must be None or a list of dicts, got {type(groups).__name__}")
    fixed = opt._group_fixed
    allowed = [h for h in opt.hyperparams if h != "learning_rate" and h not in fixed]
    if "learning_rate" not in fixed:
        allowed.insert(0, "lr_scale")
    checked = []
    for i, g in enumerate(groups):
        where = f"groups[{i}]"
        if not isinstance(g, Mapping):
            raise TypeError(f"{fn}: {where} must be a dict with 'keys', got {type(g).__name__}")
        if "keys" not in g:
            raise ValueError(f"{fn}: {where} must have 'keys' (a collection of keys or a callable), got it missing")
        keys = g["keys"]
        if not callable(keys):
            if isinstance(keys, (str, bytes)) or not isinstance(keys, Collection):
                raise TypeError(
                    f"{fn}: {where}['keys'] must be a collection of keys or a callable (key, array) -> bool, "
                    f"got {type(keys).__name__}{' (put one key in a list)' if isinstance(keys, str) else ''}"
                )
            keys = frozenset(keys)
        settings: Settings = {}
        for name, value in g.items():
            if name == "keys":
                continue
            if name == "learning_rate":
                raise ValueError(
                    f"{fn}: {where} must not set 'learning_rate' (a group scales the optimizer's with "
                    f"'lr_scale', so that one schedule drives every group), got it set"
                )
            if name not in allowed:
                base = "learning_rate" if name == "lr_scale" else name
                why = f" ({name!r} is not: {fixed[base]})" if base in fixed else ""
                raise ValueError(f"{fn}: {where} must set only {', '.join(map(repr, allowed))}{why}, got {name!r}")
            settings[name] = value
        view = group_view(opt, settings, where, check=True)
        if view.slots != opt.slots:
            raise ValueError(
                f"{fn}: {where} must keep the optimizer's state slots {opt.slots} (a setting that changes "
                f"them is the optimizer's only), got settings giving {view.slots}"
            )
        lr_scale = settings.pop("lr_scale", 1.0)
        settings = {"lr_scale": lr_scale, **{h: getattr(view, h) for h in settings}}
        checked.append(Group(keys, settings))
    return checked


def group_view(opt, settings: Settings, where: str = "", *, check: bool = False):
    """A copy of ``opt`` whose hyper-parameters are those of a group with ``settings``
    (with ``check``, each checked as the attribute is, the error naming ``where``): what the reference
    applies and what the Rust-backed classes pack for the group."""
    view = object.__new__(type(opt))
    view.__dict__.update(opt.__dict__)
    view.__dict__.pop("_packed", None)
    fn = opt._name
    for name, value in settings.items():
        if name == "lr_scale":
            scale = _validate.number(fn, f"{where}['lr_scale']", value, lo=0.0) if check else value
            view.__dict__["learning_rate"] = opt.learning_rate * scale
            continue
        hyper: Any = getattr(type(opt), name, None)
        if check and hasattr(hyper, "bounds"):  # a Hyper: its own check, naming the group
            label = f"{where}[{name!r}]"
            if hyper.flag:
                view.__dict__[name] = _validate.flag(fn, label, value)
            else:
                view.__dict__[name] = _validate.number(fn, label, value, **hyper.bounds)
        elif check:
            try:
                setattr(view, name, value)
            except (TypeError, ValueError) as e:
                # the attribute's own check, its message prefixed with the group
                raise type(e)(f"{fn}: {where}[{name!r}]: {str(e).removeprefix(f'{fn}: ')}") from None
        else:
            view.__dict__[name] = value
    return view


def assign(groups: list[Group], params: Mapping) -> dict[Any, int]:
    """``{key: index of the first group claiming it}`` for the keys of ``params`` some
    group claims."""
    claimed = {}
    for key, array in params.items():
        for i, g in enumerate(groups):
            if g.claims(key, array):
                claimed[key] = i
                break
    return claimed


def takes_groups(init):
    """``init`` (an optimizer's ``__init__``) taking also ``groups=None`` by keyword, set once
    the optimizer is built: every optimizer gets parameter groups from the base class."""

    @functools.wraps(init)
    def __init__(self, *args, groups=None, **kwargs):
        init(self, *args, **kwargs)
        # the outermost __init__ of a chain sets them (an inner one sees no groups)
        if groups is not None or "_groups" not in self.__dict__:
            self._set_groups(groups)

    sig = inspect.signature(init)
    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    params.insert(at, inspect.Parameter("groups", inspect.Parameter.KEYWORD_ONLY, default=None))
    __init__.__signature__ = sig.replace(parameters=params)
    __init__._takes_groups = True
    return __init__
