"""invskin: Invertible Neural Skinning.

Learn an animatable model of a clothed person from raw posed scans plus skeleton poses, extract its
canonical mesh once, and repose that mesh to any pose with exact vertex correspondences.

Package layout (dependencies point downwards only):

- ``invskin.geometry``: rotations, 4x4 transforms, forward kinematics, linear blend skinning.
- ``invskin.body``: skeletons and body models (anny, SMPL) that produce bones and skinning weights.
- ``invskin.mesh``: mesh IO, winding-number occupancy, marching-cubes extraction.
- ``invskin.metrics``: IoU, Chamfer, normal consistency, F-score, correspondence error.
- ``invskin.data``: the dataset format, the synthetic benchmark, loaders for CAPE/ClothSeq/folders.
- ``invskin.nets`` and ``invskin.solvers``: PINs, SIREN, skinning fields, root finding.
- ``invskin.models``, ``invskin.training``, ``invskin.evaluation``, ``invskin.export``, ``invskin.cli``.
"""

__version__ = "0.1.0"
