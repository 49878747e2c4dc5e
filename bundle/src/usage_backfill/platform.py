"""What only exists on Databricks, behind small functions with local stand-ins.

- `dbutils.widgets`: where a notebook task finds its job parameters
  (`job_parameters`; locally `LocalDbutils` built from a dict).
- `dbutils.notebook.exit`: where the fleet reads the task's result
  (`notebook_output.result`; locally `LocalDbutils` keeps the value).
Unity Catalog names are resolved in `tables` (locally a warehouse directory). The jobs read
raw files in batch with Spark's file sources, which work alike on both, so they need no Auto
Loader; they read no system tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def job_parameters(dbutils: Any) -> dict[str, str]:
    """Every job parameter the task received (Databricks pushes them down as widgets).
    Runtimes without `widgets.getAll` expose the same map as the notebook's bindings."""
    get_all = getattr(dbutils.widgets, "getAll", None)
    if get_all is not None:
        values = get_all()
    else:
        bindings = dbutils.notebook.entry_point.getCurrentBindings()
        values = {key: bindings[key] for key in bindings}
    return {str(k): str(v) for k, v in values.items()}


class NotebookExit(Exception):
    """Raised by the stand-in's `notebook.exit`, as Databricks stops the notebook there."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class _Widgets:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str:
        return self._values[name]

    def getAll(self) -> dict[str, str]:
        return dict(self._values)


class _Notebook:
    def exit(self, value: str) -> None:
        raise NotebookExit(value)


class LocalDbutils:
    """The part of `dbutils` the bundle's notebooks use, for running them off Databricks."""

    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.widgets = _Widgets(parameters)
        self.notebook = _Notebook()
