"""An image config's fields checked against the types the OCI and Docker specs give them.

A config comes from a stranger: a field of the wrong type is dropped with a warning (as if
absent), so no code downstream ever meets an integer where a list of strings belongs.
"""

from __future__ import annotations

from typing import Any, Callable

Check = Callable[[Any], bool]


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _string_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _set(v: Any) -> bool:  # ExposedPorts, Volumes: {"80/tcp": {}}
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


def _object(v: Any) -> bool:
    return isinstance(v, dict)


TOP: dict[str, Check] = {"created": _str, "author": _str, "architecture": _str, "os": _str, "variant": _str,
                         "os.version": _str, "os.features": _strings, "docker_version": _str, "container": _str}
RUN: dict[str, Check] = {"User": _str, "ExposedPorts": _set, "Env": _strings, "Entrypoint": _strings, "Cmd": _strings,
                         "Volumes": _set, "WorkingDir": _str, "Labels": _string_map, "StopSignal": _str,
                         "Healthcheck": _object, "Shell": _strings, "OnBuild": _strings, "Hostname": _str,
                         "Domainname": _str, "Image": _str, "ArgsEscaped": _bool}
STEP: dict[str, Check] = {"created": _str, "created_by": _str, "author": _str, "comment": _str, "empty_layer": _bool}


def _typename(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _keep(doc: dict[str, Any], rules: dict[str, Check], where: str, warnings: list[str]) -> dict[str, Any]:
    """``doc`` without the fields whose value breaks their rule (null means absent)."""
    out = {}
    for key, value in doc.items():
        rule = rules.get(key)
        if rule is None or value is None or rule(value):
            out[key] = value
        else:
            warnings.append(f"config field {where}{key} is {_typename(value)}, which it may not be; ignored")
    return out


def clean_config(config: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The config with every field of a wrong type left out, each said in ``warnings``."""
    out = _keep(config, TOP, "", warnings)
    for key in ("config", "container_config"):
        run = out.get(key)
        if run is None:
            continue
        if isinstance(run, dict):
            out[key] = _keep(run, RUN, f"{key}.", warnings)
        else:
            warnings.append(f"config field {key} is {_typename(run)}, not an object; ignored")
            del out[key]
    rootfs = out.get("rootfs")
    if rootfs is not None:
        if not isinstance(rootfs, dict):
            warnings.append(f"config field rootfs is {_typename(rootfs)}, not an object; ignored")
            del out["rootfs"]
        elif not _strings(rootfs.get("diff_ids") or []):
            warnings.append("config field rootfs.diff_ids is not a list of strings; ignored")
            out["rootfs"] = {k: v for k, v in rootfs.items() if k != "diff_ids"}
    history = out.get("history")
    if history is not None:
        if not isinstance(history, list):
            warnings.append(f"config field history is {_typename(history)}, not a list; ignored")
            del out["history"]
        else:
            steps = []
            for i, step in enumerate(history):
                if isinstance(step, dict):
                    steps.append(_keep(step, STEP, f"history[{i}].", warnings))
                else:
                    warnings.append(f"config field history[{i}] is {_typename(step)}, not an object; "
                                    "kept as an empty step")
                    steps.append({})
            out["history"] = steps
    return out
