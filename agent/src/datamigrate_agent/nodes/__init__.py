"""The migrate graph's nodes, one module each; ``graph.py`` wires them."""

from datamigrate_agent.nodes.assess import assess_objects
from datamigrate_agent.nodes.evaluate import evaluate_results
from datamigrate_agent.nodes.generate import generate_project
from datamigrate_agent.nodes.plan import plan_models
from datamigrate_agent.nodes.repair import repair_models, route_after_repair
from datamigrate_agent.nodes.report import write_report
from datamigrate_agent.nodes.test import route_after_test, test_project

__all__ = [
    "assess_objects",
    "evaluate_results",
    "generate_project",
    "plan_models",
    "repair_models",
    "route_after_repair",
    "route_after_test",
    "test_project",
    "write_report",
]
