"""Builders of the shipped workflows and blueprints (scripts/build_workflows.py writes them).

To add a workflow: write ``def my_workflow(info) -> Graph`` in a module here and append
``("my_workflow_name", my_workflow)`` to ``WORKFLOWS`` in registry.py; a blueprint made of it goes into
``BLUEPRINTS`` there.
"""
