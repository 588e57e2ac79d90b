"""Working without the Hugging Face hub: when it cannot be reached, go offline at once (cached models and
datasets only) instead of sitting through huggingface_hub's retry loop before the same failure.

Must run before huggingface_hub, transformers or datasets are imported: they read the offline switches once.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
_AUTO = "KDEDGE_HUB_UNREACHABLE"  # set when kdedge switched offline itself; errors then say why


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the hub's endpoint ($HF_ENDPOINT or huggingface.co); a failed name lookup is instant."""
    url = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _exists(name: str) -> bool:
    """Whether `name` is a local path; a name the file system cannot even look up (a NUL byte, over 255 bytes a
    component) is not, rather than an OSError or ValueError out of the command."""
    try:
        return Path(name).exists()
    except (OSError, ValueError):
        return False


def hub_sources(cfg) -> list[str]:
    """What a command's config would fetch from the hub: model names that are not local paths, and a GLUE task
    when no local data is given. Empty when everything is local: then the hub is never contacted."""
    names = [getattr(cfg, field, None) for field in ("model", "teacher", "intermediate_teacher", "mlm", "generator")]
    init = getattr(cfg, "init", None) or ""
    if init.startswith("pretrained:"):
        names.append(init.split(":", 1)[1])
    sources = [n for n in names if n and not _exists(n)]
    local_data = getattr(cfg, "train_file", None) or getattr(cfg, "data_dir", None) or os.environ.get("KDEDGE_DATA_DIR")
    if not local_data:
        task = getattr(cfg, "task", None) or "of the model"
        sources.append(f"GLUE task {task} from the dataset hub")
    return sources


def go_offline_if_unreachable() -> None:
    """Set the offline switches when the hub cannot be reached (unless the user already chose, or a proxy
    stands in between, which a direct connection cannot judge)."""
    if any(name in os.environ for name in OFFLINE_VARIABLES) or any(os.environ.get(p) for p in _PROXY_VARIABLES):
        return
    if not hub_reachable():
        os.environ.update({name: "1" for name in OFFLINE_VARIABLES}, **{_AUTO: "1"})


def hub_unreachable_detected() -> bool:
    """Whether this process went offline because the hub could not be reached."""
    return _truthy(_AUTO)


def offline_hint() -> str:
    """What to say when a model could not be loaded."""
    reason = "The hub cannot be reached from here, so only cached files load. " if hub_unreachable_detected() else ""
    return (f"{reason}Give a local folder or a hub id; offline, set HF_HUB_CACHE and HUGGINGFACE_HUB_CACHE to a "
            "hub cache that holds it, and HF_HUB_OFFLINE=1")
