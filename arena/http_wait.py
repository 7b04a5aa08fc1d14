"""Wait for a freshly started server to answer HTTP. No Django import: the supervisor uses it too."""

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_for_http(
    url: str,
    *,
    timeout: float,
    process: subprocess.Popen | None = None,
    accept: Callable[[int], bool] = lambda status: status < 500,
) -> None:
    """Poll GET url until its status is accepted; raise if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {process.returncode}")
        try:
            if accept(httpx.get(url, timeout=2.0).status_code):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")
