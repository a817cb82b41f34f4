"""YAML launches: parsing a config without running it, and running an entry point with readable errors.

``parse_config(cls, path, overrides)`` is what ``levanter.config.main`` does before calling a main: draccus
parses the YAML and ``--dotted.field value`` overrides into ``cls``, raising an error that names a bad field.

``run_main(main)`` is every entry point's ``if __name__ == "__main__"`` line. It parses ``sys.argv`` the same
way and calls ``main(config)``; a launch error (a config path that is missing or not YAML, an unknown key, a
value of the wrong type, an impossible shape, a :class:`ConfigError` raised by the main before it starts work, or
a ``FileNotFoundError`` such as a missing checkpoint path) prints one short message naming the file or field and the fix, and exits with status 2, without a
traceback. ``--debug`` on the command line (or ``LAUNCH_DEBUG=1`` in the environment) lets the original
exception through with its traceback.
"""

import contextlib
import dataclasses
import difflib
import inspect
import io
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar, get_type_hints

import draccus
import yaml
from draccus.choice_types import ChoiceRegistry
from draccus.utils import DecodingError, ParsingError

T = TypeVar("T")
DEBUG_FLAG = "--debug"
DEBUG_ENV = "LAUNCH_DEBUG"
EXIT_CODE = 2


class ConfigError(ValueError):
    """A config that cannot run (a shape the data contradicts, a missing checkpoint path...), raised before any
    work starts. ``run_main`` prints its message without a traceback."""


def parse_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """``cls`` from ``path`` (a draccus YAML) plus command-line style ``overrides`` such as ``["--a.b", "1"]``."""
    args = list(overrides)
    return draccus.parse(config_class=cls, config_path=str(path) if path is not None else None, args=args)


def run_main(main: Callable[[Any], T], argv: list[str] | None = None) -> T:
    """Parse ``argv`` (default ``sys.argv[1:]``) into ``main``'s annotated config class and call ``main``.

    Launch errors exit with status 2 and one message on stderr (see the module docstring); ``--help`` prints
    draccus's usage as usual."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != DEBUG_FLAG]
    config_cls = _config_class(main)
    config_path = _config_path_arg(argv)
    try:
        _check_config_file(config_path)
        config = _parse(config_cls, argv, _choice_names(argv, config_path))
        return main(config)
    except (ConfigError, FileNotFoundError, _LaunchError) as e:  # a missing data set or checkpoint path included
        if debug:
            raise
        where = f" in {config_path}" if config_path and Path(config_path).is_file() else ""
        sys.stderr.write(f"error{where}: {e}\n"
                         f"(add {DEBUG_FLAG} or set {DEBUG_ENV}=1 for the traceback)\n")
        sys.exit(EXIT_CODE)


class _LaunchError(Exception):
    """A parse-time problem, already phrased for the user."""


def _config_class(main: Callable) -> type:
    spec = inspect.getfullargspec(main)
    if not spec.args:
        raise TypeError(f"{main.__qualname__} must take its config as its first argument")
    hints = get_type_hints(main)
    return hints[spec.args[0]]


def _config_path_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config_path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config_path="):
            return arg.split("=", 1)[1]
    return None


def _check_config_file(path: str | None) -> None:
    """Raise a readable error unless ``path`` (the ``--config_path`` argument, if any) is a readable YAML mapping."""
    if path is None:
        return
    file = Path(path)
    if not file.exists():
        close = _similar_files(file)
        hint = f" Did you mean {' or '.join(close)}?" if close else " Pass the path of a YAML file under configs/."
        raise _LaunchError(f"config file {path} does not exist.{hint}")
    if file.is_dir():
        raise _LaunchError(f"config path {path} is a folder; pass one YAML file in it, e.g. "
                           f"{next(iter(sorted(file.glob('*.yaml'))), file / 'name.yaml')}")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise _LaunchError(f"config file {path} cannot be read: {e.strerror if isinstance(e, OSError) else e}")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise _LaunchError(f"config file {path} is not valid YAML: {problem}{at}")
    if loaded is not None and not isinstance(loaded, dict):
        raise _LaunchError(f"config file {path} must hold a mapping of fields (key: value), not a "
                           f"{type(loaded).__name__}")


def _similar_files(file: Path) -> list[str]:
    folder = file.parent if file.parent.exists() else None
    if folder is None:
        return []
    names = [p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml")]
    return [str(folder / n) for n in difflib.get_close_matches(file.name, names, n=2, cutoff=0.6)]


def _choice_names(argv: list[str], config_path: str | None) -> Callable[[list[str]], str | None]:
    """``prefix -> type`` of a choice field (``model: {type: crate}``) as the command line or the YAML sets it."""
    loaded = yaml.safe_load(Path(config_path).read_text()) if config_path else None

    def chosen(prefix: list[str]) -> str | None:
        flag = "--" + ".".join(prefix + ["type"])
        for i, arg in enumerate(argv):
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
        node = loaded
        for name in prefix:
            node = node.get(name) if isinstance(node, dict) else None
        return node.get("type") if isinstance(node, dict) else None

    return chosen


def _parse(config_cls: type, argv: list[str], chosen: Callable[[list[str]], str | None]):
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            return draccus.parse(config_class=config_cls, args=argv)
    except SystemExit as e:
        if e.code in (0, None):
            sys.stderr.write(usage.getvalue())
            raise
        raise _LaunchError(_argparse_message(usage.getvalue(), config_cls, chosen)) from None
    except DecodingError as e:
        raise _LaunchError(_decoding_message(e, config_cls, chosen)) from e
    except ParsingError as e:
        cause = e.__cause__
        if cause is not None and not isinstance(cause, (ParsingError, yaml.YAMLError)):
            raise _LaunchError(f"{cause}") from e
        raise _LaunchError(f"{e}" + (f": {cause}" if cause is not None else "")) from e
    except (ValueError, TypeError) as e:  # a __post_init__ check of a field
        raise _LaunchError(f"{e}") from e


def _argparse_message(printed: str, config_cls: type, chosen) -> str:
    lines = [line for line in printed.strip().splitlines() if line.strip()]
    message = lines[-1].split("error:", 1)[-1].strip() if lines else "could not parse the command line"
    unknown = re.findall(r"--([\w.]+)", message) if "unrecognized arguments" in message else []
    hints = [_field_hint(config_cls, name.split("."), chosen) for name in unknown]
    return "; ".join([f"command line: {message}"] + [h for h in hints if h])


def _decoding_message(e: DecodingError, config_cls: type, chosen) -> str:
    path = list(e.key_path)
    match = re.search(r"The fields (.*) are not valid for (\w+)", e.message)
    if match:
        names = re.findall(r"`([^`]+)`", match.group(1)) or [match.group(1)]
        hints = [_field_hint(config_cls, path + [name], chosen) for name in names]
        where = ".".join(path) or "the top level"
        return f"unknown field{'s' if len(names) > 1 else ''} {', '.join('.'.join(path + [n]) for n in names)} " \
               f"(not a field of {where})" + "".join(f"; {h}" for h in hints if h)
    return f"field {'.'.join(path)}: {e.message}" if path else e.message


def _field_hint(config_cls: type, path: list[str], chosen: Callable[[list[str]], str | None]) -> str:
    """'did you mean model.hidden_dim?' for the first name of ``path`` that is not a field, or the valid fields
    there. A choice field (``model: {type: ...}``) is looked up in the class its ``type`` selects (``chosen``),
    else in its default choice."""
    cls: Any = config_cls
    for depth, name in enumerate(path):
        cls = _concrete(cls, chosen(path[:depth]))
        if not dataclasses.is_dataclass(cls):
            return ""
        valid = [f.name for f in dataclasses.fields(cls)]
        if name not in valid:
            prefix = ".".join(path[:depth])
            close = difflib.get_close_matches(name, valid, n=1)
            if close:
                return f"did you mean {prefix + '.' if prefix else ''}{close[0]}?"
            return f"valid fields of {prefix or 'the config'}: {', '.join(valid)}"
        cls = _field_type(cls, name)
    return ""


def _concrete(cls: Any, choice: str | None) -> Any:
    """A ChoiceRegistry base resolved to the class registered as ``choice``, or to its default choice."""
    if not (isinstance(cls, type) and issubclass(cls, ChoiceRegistry)):
        return cls
    choices = cls.get_known_choices()
    if choice in choices:
        return choices[choice]
    default = cls.default_choice_name()
    return choices.get(default, cls) if default else cls


def _field_type(cls: type, name: str) -> type | None:
    try:
        hint = get_type_hints(cls)[name]
    except Exception:
        return None
    return hint if isinstance(hint, type) else None
