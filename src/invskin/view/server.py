"""The web viewer: a viser server (three.js in the browser) that shows :class:`ViewData`.

Scene (y up, metres): the chosen run's posed mesh at the origin, the ground-truth scan beside it
(to its right), overlaid on it (translucent) or hidden, and optionally the canonical mesh to its
left. GUI: run, colouring (error to the scan on a fixed cm scale with its colour bar, the
avatar's look, or plain), frame slider, play / pause and speed. The look is the avatar's own when
it has one (the imported character's texture through UVs, or vertex colours; the viewer opens on
it), else the painted checker. Meshes travel to the browser as GLB (``COLOR_0``, or
``TEXCOORD_0`` and the texture).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import trimesh
import viser
from PIL import Image

from invskin.data.loaders.appearance import linear_to_srgb
from invskin.mesh.io import TriMesh
from invskin.mesh.render import color_bar, colormap
from invskin.view.data import RunView, ViewData

COLOURINGS = ("error (cm)", "texture", "plain")
SCAN_MODES = ("beside", "overlaid", "hidden")
PLAIN = np.array([200, 200, 210], dtype=np.uint8)
SCAN_COLOR = (170, 170, 170)


@dataclass
class Viewer:
    """A running viewer; ``url`` to open, :meth:`stop` to shut it down."""

    server: viser.ViserServer
    url: str
    data: ViewData
    _stop: threading.Event

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()


def _glb_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> trimesh.Trimesh:
    rgba = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    return trimesh.Trimesh(vertices, faces, vertex_colors=rgba, process=False)


def look_mesh(
    run: RunView, vertices: np.ndarray, image: Image.Image | None = None
) -> trimesh.Trimesh:
    """The run's mesh at ``vertices`` (V, 3) drawn with its look: textured (seam copies added,
    UVs flipped to trimesh's bottom-left origin; ``image``: the decoded texture, decoded here
    when not given), vertex-coloured, plain-coloured, or with the painted checker when it has no
    look of its own."""
    look = run.look
    if look is None:
        return _glb_mesh(vertices, run.canonical.faces, run.texture)
    if look.kind == "texture":
        if image is None:
            image = Image.fromarray(look.texture.decode())
        uv = look.uv.astype(np.float64).copy()
        uv[:, 1] = 1.0 - uv[:, 1]
        visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
        return trimesh.Trimesh(look.expand(vertices), look.faces, visual=visual, process=False)
    if look.colors is not None:
        colors = np.round(look.colors * 255).astype(np.uint8)
    else:
        rgb = linear_to_srgb(np.asarray(look.base_color_factor[:3]))
        colors = np.broadcast_to(np.round(rgb * 255).astype(np.uint8), (len(vertices), 3))
    return _glb_mesh(vertices, run.canonical.faces, np.ascontiguousarray(colors))


def start_viewer(
    data: ViewData,
    host: str = "127.0.0.1",
    port: int = 8080,
    vmax_cm: float = 5.0,
    fps: float = 10.0,
) -> Viewer:
    """Start the server (it runs in background threads) and build the scene and the controls."""
    server = viser.ViserServer(host=host, port=port, verbose=False)
    server.scene.set_up_direction("+y")
    stop = threading.Event()
    lock = threading.Lock()
    runs = {run.name: run for run in data.runs}
    first = data.runs[0]
    lo, hi = first.posed.min((0, 1)), first.posed.max((0, 1))
    spacing = 1.4 * float(max(hi[0] - lo[0], 0.6))
    centre = 0.5 * (lo + hi)
    centre[0] += 0.5 * spacing  # between the run and the scan beside it
    server.initial_camera.look_at = tuple(float(v) for v in centre)
    server.initial_camera.position = (
        float(centre[0]),
        float(centre[1]),
        float(centre[2] + 1.3 * max(hi[1] - lo[1], spacing)),
    )

    gui_run = server.gui.add_dropdown("run", tuple(runs), initial_value=first.name)
    start = COLOURINGS[1] if first.look is not None else COLOURINGS[0]
    gui_colour = server.gui.add_dropdown("colour", COLOURINGS, initial_value=start)
    gui_scan = server.gui.add_dropdown("scan", SCAN_MODES, initial_value=SCAN_MODES[0])
    gui_canonical = server.gui.add_checkbox("canonical mesh", initial_value=False)
    gui_frame = server.gui.add_slider("frame", 0, len(data.frame_names) - 1, 1, 0)
    gui_play = server.gui.add_checkbox("play", initial_value=False)
    gui_fps = server.gui.add_slider("frames / s", 1.0, 30.0, 1.0, float(fps))
    gui_info = server.gui.add_markdown("")
    bar = color_bar(260, 0.0, vmax_cm, "distance to scan (cm)", width=190, font_size=13)
    gui_legend = server.gui.add_image(bar, label="error colours", format="png")

    def colours(run, frame: int) -> np.ndarray:
        if gui_colour.value == "plain":
            return np.broadcast_to(PLAIN, (run.canonical.num_vertices, 3))
        return colormap(run.errors_cm[frame], 0.0, vmax_cm)

    images = {
        run.name: Image.fromarray(run.look.texture.decode())
        for run in data.runs
        if run.look is not None and run.look.texture is not None
    }

    def styled(run, vertices: np.ndarray, frame: int) -> trimesh.Trimesh:
        if gui_colour.value == "texture":
            return look_mesh(run, vertices, images.get(run.name))
        return _glb_mesh(vertices, run.canonical.faces, colours(run, frame))

    def redraw(_=None) -> None:
        with lock:
            run = runs[gui_run.value]
            frame = int(gui_frame.value)
            server.scene.add_mesh_trimesh("/run", styled(run, run.posed[frame], frame))
            scan: TriMesh = data.scans[frame]
            if gui_scan.value == "hidden":
                server.scene.remove_by_name("/scan")
            else:
                beside = gui_scan.value == "beside"
                server.scene.add_mesh_simple(
                    "/scan",
                    scan.vertices,
                    scan.faces,
                    color=SCAN_COLOR,
                    opacity=None if beside else 0.45,
                    side="double",
                    position=(spacing, 0.0, 0.0) if beside else (0.0, 0.0, 0.0),
                )
            if gui_canonical.value:
                server.scene.add_mesh_trimesh(
                    "/canonical",
                    styled(run, run.canonical.vertices, frame),
                    position=(-spacing, 0.0, 0.0),
                )
            else:
                server.scene.remove_by_name("/canonical")
            gui_legend.visible = gui_colour.value == COLOURINGS[0]
            error = run.errors_cm[frame]
            gui_info.content = (
                f"**{run.name}** ({run.method}), frame **{data.frame_names[frame]}** "
                f"({frame + 1}/{len(data.frame_names)})  \n"
                f"distance to scan: mean {error.mean():.2f} cm, p95 "
                f"{np.percentile(error, 95):.2f} cm  \n"
                f"left to right: {'canonical, ' if gui_canonical.value else ''}{run.name}"
                f"{', scan' if gui_scan.value == 'beside' else ''}"
            )

    for handle in (gui_run, gui_colour, gui_scan, gui_canonical, gui_frame):
        handle.on_update(redraw)
    redraw()

    def play() -> None:
        while not stop.is_set():
            if gui_play.value and len(data.frame_names) > 1:
                gui_frame.value = (int(gui_frame.value) + 1) % len(data.frame_names)
            time.sleep(1.0 / max(1.0, float(gui_fps.value)))

    threading.Thread(target=play, daemon=True, name="invskin-view-play").start()
    url = f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1') else host}:{server.get_port()}"
    return Viewer(server, url, data, stop)
