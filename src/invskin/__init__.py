"""invskin: Invertible Neural Skinning.

Learn an animatable model of a clothed person from raw posed scans plus skeleton poses, extract its
canonical mesh once, and repose that mesh to any pose with exact vertex correspondences.

Package layers, from the bottom up (a package imports only those below it; ``tests/test_layers.py``
checks every import, and docs/method.md says what each layer holds):

- ``errors``, ``fileio``, ``safe_pickle``, ``folder_lock``, ``native``: small utilities.
- ``invskin.geometry``, ``invskin.mesh``, ``invskin.body``: rotations, transforms, kinematics and
  skinning as pure functions; triangle meshes (IO, winding numbers, extraction, rendering);
  skeletons and body models (anny, SMPL).
- ``invskin.metrics``: IoU, Chamfer, normal consistency, F-score, correspondence error.
- ``invskin.motion``, ``invskin.data``: motion files read onto a skeleton; the dataset format, the
  synthetic benchmark and the importers.
- ``invskin.export``: file writers for engines (skinned glTF, per-frame GLB, the avatar's look).
- ``invskin.nets``, ``invskin.solvers``: PINs, SIREN, skinning fields, root finding.
- ``invskin.models``: the animatable model (networks and losses) and its fast reposing path.
- ``invskin.training``: the trainer, presets, checkpoints, data-parallel training.
- ``invskin.runs``: run folders: load, extract once, repose (one or many sequences), export.
- ``invskin.evaluation``, ``invskin.view``, ``invskin.bench``, ``invskin.demo``, ``invskin.cli``.
"""

__version__ = "0.1.0"
