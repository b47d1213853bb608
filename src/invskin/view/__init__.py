"""``invskin view``: a browser viewer (viser) for trained runs against a dataset split."""

from invskin.view.data import RunView, ViewData, load_view_data
from invskin.view.server import Viewer, start_viewer

__all__ = ["RunView", "ViewData", "Viewer", "load_view_data", "start_viewer"]
