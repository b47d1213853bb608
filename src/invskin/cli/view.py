"""The ``view`` subcommand."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

STILL_WRITTEN = (
    "The run is still being written (a training holds its run until it ends); view it when that "
    "command has finished."
)


@dataclass
class View:
    """Open trained runs in a web viewer (viser): canonical mesh, the reposed sequence with a frame
    slider and play / pause, the ground-truth scan beside or overlaid, per-vertex error colours
    with a legend, the painted texture, and a switch between runs.

    Prints the URL to open in a browser; needs no display. On a remote machine forward the port
    (ssh -L 8080:localhost:8080 HOST) and open the URL locally. Ctrl-C stops it."""

    runs: tuple[Path, ...]
    """Run folders (e.g. runs/ins runs/snarf-nc); methods that extract their mesh once."""
    data: Path | None = None
    """Dataset folder (default: the one the first run was trained on)."""
    split: str = "test-out"
    motion: str | None = None
    """Show only this motion of the split (e.g. run)."""
    max_frames: int = 30
    """Frames shown (the first ones of the split or motion)."""
    texture: Path | None = None
    """Image painted on the canonical mesh from the front (default: a generated UV checker)."""
    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 to accept other machines)."""
    port: int = 8080
    vmax_cm: float = 5.0
    """Top of the error colour scale, in cm."""
    seconds: float | None = None
    """Stop after this many seconds (default: run until Ctrl-C)."""

    def main(self) -> None:
        from contextlib import ExitStack

        from invskin.export.texture import load_texture_image
        from invskin.folder_lock import hold_folder
        from invskin.view import load_view_data, start_viewer

        image = load_texture_image(self.texture) if self.texture is not None else None
        # The runs are read (shared locks) while the viewer loads them: a run still training (or
        # written by extract / eval) is refused instead of shown half written.
        with ExitStack() as locks:
            for run in self.runs:
                locks.enter_context(hold_folder(run, shared=True, hint=STILL_WRITTEN))
            data = load_view_data(
                self.runs, self.data, self.split, self.motion, self.max_frames, texture=image
            )
        viewer = start_viewer(data, self.host, self.port, vmax_cm=self.vmax_cm)
        print(f"invskin view: open {viewer.url}", flush=True)
        port = viewer.server.get_port()  # viser moves on to a free port if --port is taken
        print(
            f"(remote machine: ssh -L {port}:localhost:{port} HOST, then open "
            f"http://localhost:{port}; Ctrl-C stops)",
            flush=True,
        )
        try:
            deadline = None if self.seconds is None else time.monotonic() + self.seconds
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            viewer.stop()
