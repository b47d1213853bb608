"""Triangle meshes: IO, winding-number occupancy, marching-cubes extraction, sampling.

Conventions for the whole subpackage: :class:`TriMesh` holds ``vertices`` (V, 3) float64 in metres
and ``faces`` (T, 3) int64, counter-clockwise from outside (outward normals); vertex order is never
changed on load or save. Occupancy is the generalised winding number > 0.5, so open scans work.
Implicit fields are **positive inside**.
"""

from invskin.mesh.extract import evaluate_grid, extract_mesh, largest_component, mesh_from_grid
from invskin.mesh.io import (
    TriMesh,
    bounding_box_diagonal,
    check_units_metres,
    face_areas,
    load_mesh,
    save_mesh,
    signed_volume,
    surface_area,
)
from invskin.mesh.sampling import (
    SurfaceSamples,
    closest_points,
    face_normals,
    interpolate_barycentric,
    sample_surface,
    vertex_normals,
)
from invskin.mesh.winding import occupancy, winding_numbers

__all__ = [
    "SurfaceSamples",
    "TriMesh",
    "bounding_box_diagonal",
    "check_units_metres",
    "closest_points",
    "evaluate_grid",
    "extract_mesh",
    "face_areas",
    "face_normals",
    "interpolate_barycentric",
    "largest_component",
    "load_mesh",
    "mesh_from_grid",
    "occupancy",
    "sample_surface",
    "save_mesh",
    "signed_volume",
    "surface_area",
    "vertex_normals",
    "winding_numbers",
]
