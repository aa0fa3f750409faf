"""The groups of fields that ``churnloop.settings.Settings`` is composed of, one per stage.

Each group is a plain pydantic model whose fields ``Settings`` inherits, so its
``CHURNLOOP_*`` variables are read there; import ``Settings`` from ``churnloop.settings``,
never a group.
"""
