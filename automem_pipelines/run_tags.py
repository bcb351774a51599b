"""The trigger tag of runs the Dagster UI launches (imports nothing heavy: the stack's run
launcher uses it before a run starts, the jobs' first ops after)."""

from __future__ import annotations

from collections.abc import Mapping

from .constants import TAG_TRIGGER

# The tag the Dagster UI puts on every run it launches (Launchpad, re-execution, materialize
# and check buttons); its value is "true".
UI_LAUNCH_TAG = "dagster/from_ui"
UI_TRIGGER = "ui"


def ui_trigger_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The trigger tag a run the Dagster UI launched lacks (``automem/trigger=ui``, as the API,
    the CLI, the schedules and the sensor tag theirs); nothing for a run that has one."""
    if tags.get(UI_LAUNCH_TAG) == "true" and TAG_TRIGGER not in tags:
        return {TAG_TRIGGER: UI_TRIGGER}
    return {}
