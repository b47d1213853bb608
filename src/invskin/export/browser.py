"""Check a GLB for real: the Khronos glTF validator, and three.js in headless Chromium.

:func:`validate_glb` runs the Khronos validator (npm ``gltf-validator`` under Node) and returns its
report (``issues.numErrors``, ``issues.numWarnings``, ``info``).

:func:`screenshot_glb` loads a GLB in a real browser, plays its animation and takes a screenshot.

The recipe: a page served from a temporary
folder on 127.0.0.1 loads the GLB with three.js's ``GLTFLoader``, plays its first animation with an
``AnimationMixer`` at time ``t``, frames the posed (skinned) mesh's bounding box, renders once and
writes what it loaded into ``document.title``; Chromium (software WebGL, SwiftShader) saves the
screenshot. Needs ``chromium`` and three.js (``scripts/install_browser.sh`` puts it in
``.tools/node_modules/three``).

    python -m invskin.export.browser model.glb shot.png --time 0.5
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title>
<script type="importmap">{"imports": {"three": "./three/build/three.module.js",
 "three/addons/": "./three/examples/jsm/"}}</script></head>
<body style="margin:0;background:#ffffff">
<script type="module">
import * as THREE from 'three';
import {GLTFLoader} from 'three/addons/loaders/GLTFLoader.js';
const W = __SIZE__, H = __SIZE__, T = __TIME__, SILHOUETTE = __SILHOUETTE__;
const ANIMATION = __ANIMATION__, ORTHO = __ORTHO__;
const renderer = new THREE.WebGLRenderer({antialias: true, preserveDrawingBuffer: true});
renderer.setSize(W, H);
renderer.setClearColor(0xffffff);
document.body.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.add(new THREE.HemisphereLight(0xffffff, 0x555555, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 2.0);
sun.position.set(1, 2, 3);
scene.add(sun);
new GLTFLoader().load('model.glb', (gltf) => {
  const root = gltf.scene;
  scene.add(root);
  let skinned = 0, morphs = 0;
  root.traverse((o) => {
    if (o.isMesh) o.frustumCulled = false;
    if (o.isSkinnedMesh) skinned += 1;
    if (o.morphTargetInfluences) morphs = Math.max(morphs, o.morphTargetInfluences.length);
  });
  let duration = 0;
  if (SILHOUETTE) {  // every mesh flat black, both faces: the outline only
    const black = new THREE.MeshBasicMaterial({color: 0x000000, side: THREE.DoubleSide});
    root.traverse((o) => { if (o.isMesh) o.material = black; });
  }
  if (gltf.animations.length) {
    const mixer = new THREE.AnimationMixer(root);
    const clip = gltf.animations.find((a) => a.name === ANIMATION) || gltf.animations[0];
    duration = clip.duration;
    const action = mixer.clipAction(clip);
    action.setLoop(THREE.LoopOnce);  // time == duration shows the last key, not the first again
    action.clampWhenFinished = true;
    action.play();
    mixer.setTime(Math.min(T, duration));
  }
  root.updateMatrixWorld(true);
  const box = new THREE.Box3();
  root.traverse((o) => {
    if (o.isSkinnedMesh) {
      o.computeBoundingBox();  // a SkinnedMesh's box is of its posed (skinned, morphed) vertices
      box.union(o.boundingBox.clone().applyMatrix4(o.matrixWorld));
    } else if (o.isMesh) {
      o.geometry.computeBoundingBox();
      box.union(o.geometry.boundingBox.clone().applyMatrix4(o.matrixWorld));
    }
  });
  const VIEW = __VIEW__;  // [cx, cy, cz, size] from the caller, or null: frame the box
  const c = VIEW ? new THREE.Vector3(VIEW[0], VIEW[1], VIEW[2]) : box.getCenter(new THREE.Vector3());
  const size = VIEW ? VIEW[3] : box.getSize(new THREE.Vector3()).length();
  let camera;
  if (ORTHO) {  // {center, half, direction}: looking along -direction, y up
    const [x, y, z] = ORTHO.center, h = ORTHO.half, d = ORTHO.direction;
    camera = new THREE.OrthographicCamera(-h, h, h, -h, 0.0, 20 * h);
    camera.position.set(x + 10 * h * d[0], y + 10 * h * d[1], z + 10 * h * d[2]);
    camera.lookAt(x, y, z);
  } else {
    camera = new THREE.PerspectiveCamera(35, W / H, size / 100, size * 10);
    camera.position.set(c.x + 0.9 * size, c.y + 0.35 * size, c.z + 1.3 * size);
    camera.lookAt(c);
  }
  renderer.render(scene, camera);
  document.title = `loaded animations=${gltf.animations.length} skinned=${skinned} ` +
    `morphs=${morphs} duration=${duration.toFixed(4)} ` +
    `box=${[...box.min.toArray(), ...box.max.toArray()].map((v) => v.toPrecision(6)).join(',')}`;
}, undefined, (error) => { document.title = 'error ' + error; });
</script></body></html>
"""


@dataclass(frozen=True)
class OrthoCamera:
    """An orthographic camera looking at ``center`` along ``-direction`` (y up), showing a square
    of half-width ``half`` (scene units) around it: the same camera frames two files alike."""

    center: tuple[float, float, float]
    half: float
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """From the centre towards the camera: ``(0, 0, 1)`` front (glTF's +z), ``(1, 0, 0)`` side."""

    def as_json(self) -> dict:
        return {
            "center": [float(v) for v in self.center],
            "half": float(self.half),
            "direction": [float(v) for v in self.direction],
        }


@dataclass(frozen=True)
class BrowserResult:
    title: str
    """What the page reported: ``loaded animations=... skinned=... morphs=... duration=...``."""
    screenshot: Path

    @property
    def loaded(self) -> bool:
        return self.title.startswith("loaded")

    @property
    def box(self) -> tuple[float, ...]:
        """The posed meshes' bounding box the page measured: min x, y, z, max x, y, z."""
        match = re.search(r"box=(\S+)", self.title)
        if match is None:
            raise ValueError(f"the page did not report its box: {self.title!r}")
        return tuple(float(v) for v in match.group(1).split(","))

    def field(self, name: str) -> float:
        match = re.search(rf"{name}=([0-9.]+)", self.title)
        if match is None:
            raise ValueError(f"the page did not report {name!r}: {self.title!r}")
        return float(match.group(1))


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def find_three(repo: Path | None = None) -> Path | None:
    """three.js installed by scripts/install_browser.sh (``.tools/node_modules/three``)."""
    roots = [Path(os.environ["INVSKIN_THREE"])] if "INVSKIN_THREE" in os.environ else []
    here = Path(__file__).resolve().parents[3]
    roots += [(repo or here) / ".tools" / "node_modules" / "three"]
    return next((r for r in roots if (r / "build" / "three.module.js").is_file()), None)


VALIDATE_JS = """
const fs = require('fs');
const validator = require(process.argv[2]);
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[3])), {maxIssues: 100})
  .then((report) => console.log(JSON.stringify(report)))
  .catch((error) => { console.error(String(error)); process.exit(1); });
"""


def find_validator(repo: Path | None = None) -> Path | None:
    """npm gltf-validator installed by scripts/install_browser.sh (``.tools/node_modules``)."""
    here = Path(__file__).resolve().parents[3]
    path = (repo or here) / ".tools" / "node_modules" / "gltf-validator"
    return path if (path / "package.json").is_file() else None


def validate_glb(glb: Path) -> dict:
    """The Khronos glTF validator's report of ``glb`` (a dict parsed from its JSON)."""
    node, validator = shutil.which("node"), find_validator()
    if node is None or validator is None:
        raise FileNotFoundError(
            "node and npm gltf-validator are needed: run scripts/install_browser.sh "
            f"(node: {node}, gltf-validator: {validator})"
        )
    with tempfile.TemporaryDirectory(prefix="invskin-validate-") as tmp:
        script = Path(tmp) / "validate.js"
        script.write_text(VALIDATE_JS)
        result = subprocess.run(
            [node, str(script), str(validator), str(Path(glb).resolve())],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the glTF validator failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot_glb(
    glb: Path,
    png: Path,
    time: float = 0.0,
    size: int = 480,
    view: tuple[float, float, float, float] | None = None,
    timeout: float = 120.0,
    ortho: OrthoCamera | None = None,
    silhouette: bool = False,
    animation: str | None = None,
    budget_ms: int = 20000,
    realtime: bool = False,
) -> BrowserResult:
    """Render ``glb`` at animation time ``time`` in headless Chromium; save ``png``.

    ``view``: ``(cx, cy, cz, size)`` the perspective camera frames (default: the posed mesh's
    bounding box); ``ortho``: an orthographic camera instead. ``silhouette``: every mesh flat black
    on white. ``animation``: the name of the clip to play (default: the first). ``budget_ms``:
    Chromium's virtual time for loading and drawing. ``realtime``: drive Chromium through its
    DevTools protocol instead, waiting in real time (up to ``timeout``) until the page reports
    that it drew: for files whose loading outlasts any virtual-time budget (megabytes of morph
    targets drawn by SwiftShader).
    """
    chromium, three = find_chromium(), find_three()
    if chromium is None or three is None:
        raise FileNotFoundError(
            "chromium and three.js are needed: run scripts/install_browser.sh "
            f"(chromium: {chromium}, three: {three})"
        )
    with tempfile.TemporaryDirectory(prefix="invskin-browser-") as tmp:
        folder = Path(tmp)
        (folder / "three").symlink_to(three)
        shutil.copyfile(glb, folder / "model.glb")
        (folder / "index.html").write_text(
            PAGE.replace("__TIME__", repr(float(time)))
            .replace("__SIZE__", str(int(size)))
            .replace("__VIEW__", json.dumps([float(v) for v in view] if view else None))
            .replace("__SILHOUETTE__", json.dumps(bool(silhouette)))
            .replace("__ANIMATION__", json.dumps(animation))
            .replace("__ORTHO__", json.dumps(ortho.as_json() if ortho else None))
        )
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(port)
            shot = folder / "shot.png"
            if realtime:
                title = _devtools_screenshot(
                    chromium, f"http://127.0.0.1:{port}/index.html", shot, size, timeout
                )
                result = None
            else:
                result = subprocess.run(
                    [
                        chromium,
                        *_headless_flags(size),
                        f"--virtual-time-budget={int(budget_ms)}",
                        f"--screenshot={shot}",
                        "--dump-dom",
                        f"http://127.0.0.1:{port}/index.html",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    cwd=folder,
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
        if result is not None:
            match = re.search(r"<title>(.*?)</title>", result.stdout, re.S)
            title = (
                html.unescape(match.group(1))
                if match
                else f"no page (chromium: {result.stderr[-300:]})"
            )
        if not shot.is_file():
            raise RuntimeError(f"chromium wrote no screenshot; page title {title!r}")
        png = Path(png)
        png.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, png)
    return BrowserResult(title, png)


def _headless_flags(size: int) -> list[str]:
    """Chromium's flags for a headless page drawn by software WebGL (SwiftShader) in a ``size`` x
    ``size`` window, shared by both screenshot paths."""
    return [
        "--headless=new",
        "--no-sandbox",
        "--enable-unsafe-swiftshader",
        "--use-angle=swiftshader",
        "--hide-scrollbars",
        f"--window-size={size},{size}",
    ]


def _devtools_screenshot(chromium: str, url: str, png: Path, size: int, timeout: float) -> str:
    """Open ``url`` in headless Chromium driven through the DevTools protocol; poll the page's
    title in real time until it starts with ``loaded`` or ``error`` (or ``timeout`` passes), then
    save a ``size`` x ``size`` screenshot to ``png``. Returns the last title."""
    import base64
    import time
    import urllib.request

    from websockets.sync.client import connect

    port = _free_port()
    # Chromium's helper processes may still write its profile while it shuts down.
    profile = tempfile.TemporaryDirectory(prefix="invskin-chromium-", ignore_cleanup_errors=True)
    browser = subprocess.Popen(
        [
            chromium,
            *_headless_flags(size),
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile.name}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chromium's DevTools endpoint did not come up")
            time.sleep(0.1)
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as socket:
            ids = iter(range(1, 1_000_000))

            def call(method: str, **params) -> dict:
                key = next(ids)
                socket.send(json.dumps({"id": key, "method": method, "params": params}))
                while True:
                    message = json.loads(socket.recv(timeout=max(deadline - time.monotonic(), 1)))
                    if message.get("id") == key:
                        return message.get("result", {})

            call("Emulation.setDeviceMetricsOverride", width=size, height=size,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
            call("Page.navigate", url=url)
            title = "loading"
            while time.monotonic() < deadline:
                value = call("Runtime.evaluate", expression="document.title")
                title = value.get("result", {}).get("value", "") or ""
                if title.startswith(("loaded", "error")):
                    break
                time.sleep(0.2)
            data = call("Page.captureScreenshot", format="png")["data"]
            png.write_bytes(base64.b64decode(data))
        return title
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        profile.cleanup()


def _wait_for(port: int, tries: int = 100) -> None:
    import time

    for _ in range(tries):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the local HTTP server on port {port} did not start")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("glb", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--time", type=float, default=0.0, help="animation time in seconds")
    parser.add_argument("--size", type=int, default=480)
    args = parser.parse_args(argv)
    result = screenshot_glb(args.glb, args.png, args.time, args.size)
    print(f"{result.title} -> {result.screenshot}")
    if not result.loaded:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
