"""Give every Great Expectations suite what it needs to run, once, when the suite is added.

``setup_gx_project`` (``churnloop validation-setup``) adds to the committed GX project the
pandas asset, batch definition, validation definition and checkpoint, all named after the
suite, that a suite lacks; commit the files it writes.
"""

from __future__ import annotations

from typing import Any

from churnloop.settings import Settings
from churnloop.validation.data_docs import DATA_DOCS_SITE
from churnloop.validation.gx_imports import (
    Checkpoint,
    DataContextError,
    UpdateDataDocsAction,
    ValidationDefinition,
)
from churnloop.validation.suites import gx_context

DATASOURCE = "churnloop"
BATCH_DEFINITION = "whole_dataframe"


def setup_gx_project(settings: Settings) -> list[str]:
    """Create what a suite needs to run (asset, batch definition, validation definition,
    checkpoint) for every suite under ``expectations/`` that lacks it; returns what it added.

    A hand-written suite without GX ids is saved back with them, since GX refers to suites
    by id. Idempotent: on the committed project it changes nothing.
    """
    context = gx_context(settings)
    added: list[str] = []
    try:
        datasource = context.data_sources.get(DATASOURCE)
    except KeyError:
        datasource = context.data_sources.add_pandas(DATASOURCE)
        added.append(f"datasource {DATASOURCE}")
    for found in sorted(context.suites.all(), key=lambda suite: suite.name):
        name = found.name
        suite = found if found.id else context.suites.add_or_update(found)
        if suite is not found:
            added.append(f"ids for the hand-written suite {name}")
        asset = next((a for a in datasource.assets if a.name == name), None)
        if asset is None:
            asset = datasource.add_dataframe_asset(name)
            added.append(f"asset {name}")
        batch = next((b for b in asset.batch_definitions if b.name == BATCH_DEFINITION), None)
        if batch is None:
            batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
            added.append(f"batch definition {name}/{BATCH_DEFINITION}")
        if not _has(context.validation_definitions, name):
            definition = ValidationDefinition(name=name, data=batch, suite=suite)
            context.validation_definitions.add(definition)
            added.append(f"validation definition {name}")
        if not _has(context.checkpoints, name):
            checkpoint = Checkpoint(
                name=name,
                validation_definitions=[context.validation_definitions.get(name)],
                actions=[
                    UpdateDataDocsAction(name="update_data_docs", site_names=[DATA_DOCS_SITE])
                ],
                result_format="SUMMARY",
            )
            context.checkpoints.add(checkpoint)
            added.append(f"checkpoint {name}")
    return added


def _has(factory: Any, name: str) -> bool:
    try:
        factory.get(name)
    except DataContextError:
        return False
    return True
