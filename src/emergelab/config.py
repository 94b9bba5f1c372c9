"""Typed experiment configs: dataclass defaults, an optional YAML file, then `--set a.b=c` overrides.

Everything is validated before anything runs. A wrong key, type or value raises ONE
`ConfigError` whose message names the full dotted key, e.g.::

    Unknown config key 'model.d_modle'. Did you mean: model.d_model?
    model.n_heads=5 is invalid: must divide model.d_model (48)

Config classes are plain dataclasses whose fields all have defaults; a class may define
`validate(self)` that calls `invalid(key, message)` for bad values (keys relative to
the class; the loader adds the prefix), or the bound checks `at_least`, `positive` and
`in_interval` for many keys at once.

Example:
    >>> cfg = load_config(InductionConfig, overrides=["train.steps=500", "seed=3"])
    >>> cfg.train.steps
    500
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import hashlib
import inspect
import io
import json
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from .errors import ConfigError

C = TypeVar("C")


class _Invalid(ConfigError):
    """Raised by `invalid()`; the loader re-raises it as a ConfigError naming the full dotted key."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key} is invalid: {message}")
        self.key, self.message = key, message


def invalid(key: str, message: str) -> typing.NoReturn:
    """Raise from `validate()`: `key` is relative to the config class being validated."""
    raise _Invalid(key, message)


# The bounds most `validate()` methods check, one rule for many fields: e.g.
#     at_least(self, 1, "steps", "batch_size"); positive(self, "lr"); in_interval(self, "(0, 1]", "p_drop")
def at_least(cfg: Any, low: float, *keys: str) -> None:
    """`invalid(key, "must be >= low")` for the first of `keys` whose value is not >= `low` (NaN included)."""
    for key in keys:
        if not getattr(cfg, key) >= low:
            invalid(key, f"must be >= {low:g}")


def positive(cfg: Any, *keys: str) -> None:
    """`invalid(key, "must be > 0")` for the first of `keys` whose value is not > 0 (NaN included)."""
    for key in keys:
        if not getattr(cfg, key) > 0:
            invalid(key, "must be > 0")


def in_interval(cfg: Any, interval: str, *keys: str) -> None:
    """`invalid(key, "must be in <interval>")` for the first of `keys` outside `interval`, written as in the
    message: "[0, 1]", "(0, 1]", "[0, 1)" or "(0, 1)" (NaN is outside)."""
    low, high = (float(b) for b in interval[1:-1].split(","))
    for key in keys:
        value = getattr(cfg, key)
        above = low < value if interval[0] == "(" else low <= value
        below = value < high if interval[-1] == ")" else value <= high
        if not (above and below):
            invalid(key, f"must be in {interval}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type_name(tp: Any, inner: bool = False) -> str:
    """How a user reads an annotation: 'int', 'a list of str', 'float or null', "'grid' or 'kmeans'"."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a, inner) for a in args)
    if origin in (list, tuple):
        return f"a list of {_type_name(args[0], True)}" if args else "a list"
    if origin is dict:
        return f"a mapping of {_type_name(args[0], True)} to {_type_name(args[1], True)}" if args else "a mapping"
    if tp is Any:
        return "any value"
    if tp in (str, bool) and not inner:
        return "a string" if tp is str else "true or false"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _number(value: Any) -> float | None:
    """`value` as a float if it is a number or a numeric string (YAML 1.1 reads '1e-3' as a string), else None;
    true and false are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against annotation `tp`, converting the harmless cases (int -> float, '1e-3' -> float)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if errors else ConfigError(f"Config key '{key}' expects {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"Config key '{key}' must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"
            )
        return value
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"Config key '{key}' expects a list, got {value!r}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"Config key '{key}' expects a mapping, got {value!r}")
        _, val_tp = get_args(tp) or (Any, Any)
        return {str(k): _coerce(v, val_tp, _join(key, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"Config key '{key}' is a section; set its fields, e.g. {key}.<field>=...")
        return from_dict(tp, value, prefix=key)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"Config key '{key}' expects true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = _number(value)
        if number is not None and number.is_integer():
            return int(number)
        raise ConfigError(f"Config key '{key}' expects int, got {value!r}")
    if tp is float:
        number = _number(value)
        if number is not None:
            return number
        raise ConfigError(f"Config key '{key}' expects float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"Config key '{key}' expects a string, got {value!r}")
    return value


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build config class `cls` from a (partial) dict; missing fields keep their defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"Config section '{prefix or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(_join(prefix, k) for k in close)}?" if close else (
                f" Valid keys{' in ' + prefix if prefix else ''}: {', '.join(fields)}.")
            raise ConfigError(f"Unknown config key '{_join(prefix, str(key))}'.{hint}")
        kwargs[key] = _coerce(value, hints[key], _join(prefix, key))
    try:
        return cls(**kwargs)
    except _Invalid as e:
        full = _join(prefix, e.key)
        value = _lookup(kwargs, e.key, cls)
        raise ConfigError(f"{full}={value!r} is invalid: {e.message}") from None


def _lookup(kwargs: dict, dotted: str, cls: type) -> Any:
    obj: Any = cls.__new__(cls)
    obj.__dict__.update({f.name: _default(f) for f in dataclasses.fields(cls)})
    obj.__dict__.update(kwargs)
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config's content (key order does not matter)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_override(text: str) -> tuple[str, Any]:
    """'train.lr=1e-3' -> ('train.lr', 0.001). Values are parsed as YAML ('[2, 1]', 'true', 'null')."""
    if "=" not in text:
        raise ConfigError(f"Override '{text}' must look like key=value, e.g. train.steps=500")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            if part in node:
                raise ConfigError(f"Config key '{'.'.join(parts[: i + 1])}' is not a section; cannot set '{dotted}'")
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"Config file '{path}' is a folder, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"Config file '{path}' is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"Config file '{path}' cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"Config file '{path}' is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of keys to values")
    return data


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> C:
    """defaults <- `base` (e.g. a stored run's config) <- YAML file <- `--set` overrides, validated.

    Starts from the full default instance, so overriding one field of a section keeps the section's
    other defaults, including those an experiment sets through `default_factory`.
    """
    tree: dict[str, Any] = _deep_merge(to_dict(cls()), base or {})
    if path is not None:
        tree = _deep_merge(tree, read_yaml(path))
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    return from_dict(cls, tree)


def dump_yaml(cfg: Any, comments: bool = False) -> str:
    """`cfg` as YAML that `load_config` reads back to the same config. `comments=True` writes each key's comment
    from its config class (its meaning and unit, see `field_comments`) beside its value::

        train:
          steps: 3000         # optimizer updates
          batch_size: 64
    """
    if not comments:
        return yaml.safe_dump(to_dict(cfg), sort_keys=False)
    return "".join(f"{line}\n" for line in _commented_lines(cfg, ""))


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the trailing `# comment` written on its line in the source of `cls` or of a dataclass it
    inherits from (a subclass's comment wins); fields without one are left out, and so is a class whose source
    cannot be read (e.g. defined in an interactive session). Section fields without a comment of their own take
    the first line of their class's docstring."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            comments.update(_own_comments(klass))
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name)
        if f.name not in comments and isinstance(tp, type) and dataclasses.is_dataclass(tp) and _docstring(tp):
            comments[f.name] = _docstring(tp)
    return comments


_TOOL_COMMENT = re.compile(r"(?:^|#)\s*(?:noqa\b|type:\s*ignore|pragma:).*$")  # directives for tools


def _own_comments(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    trailing: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and tok.line[: tok.start[1]].strip():
                text = _TOOL_COMMENT.sub("", tok.string.lstrip("#")).strip()
                if text:
                    trailing[tok.start[0]] = text
    except (tokenize.TokenError, SyntaxError):
        return {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    own = {}
    for node in body:  # only statements of the class body itself, not of its methods
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = trailing.get(node.lineno) or trailing.get(node.end_lineno or node.lineno)
            if text:
                own[node.target.id] = text
    return own


def _docstring(cls: type) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses write when there is no docstring
        return ""
    return doc.strip().split("\n")[0].strip()


def _scalar(value: Any) -> str:
    """`value` as one line of YAML (flow style for lists and mappings)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    text = text.removesuffix("\n...\n").removesuffix("\n")
    return json.dumps(value) if "\n" in text else text  # JSON is YAML, and keeps a multi-line string on one line


def _commented_lines(cfg: Any, indent: str) -> list[str]:
    notes = field_comments(type(cfg))
    rows: list[tuple[str, str]] = []  # (key: value, comment)
    nested: dict[int, list[str]] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{indent}{_scalar(f.name)}:"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            nested[len(rows)] = _commented_lines(value, indent + "  ")
            rows.append((key, notes.get(f.name, "")))
        elif isinstance(value, dict) and value:
            nested[len(rows)] = [f"{indent}  {_scalar(k)}: {_scalar(v)}" for k, v in value.items()]
            rows.append((key, notes.get(f.name, "")))
        else:
            rows.append((f"{key} {_scalar(_plain(value))}", notes.get(f.name, "")))
    width = min(max((len(text) for text, note in rows if note), default=0), 48)
    lines = []
    for i, (text, note) in enumerate(rows):
        lines.append(f"{text.ljust(width)}  # {note}" if note else text)
        lines.extend(nested.get(i, []))
    return lines


def _plain(value: Any) -> Any:
    """A value as `to_dict` writes it: dataclasses (also inside lists) as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
