"""What the rehearsal does not rehearse besides the template adaptations (rehearse.adapt)
and the steps' own workarounds: what ministack creates but never exercises. Printed as
"not rehearsed: ..." after the summary."""

from __future__ import annotations

from rehearse.adapt import Adaptation

#: what ministack creates but does not exercise, whatever the template says
NOT_EXERCISED = [
    Adaptation(
        "IAM roles and policies", "ministack creates them, never enforces them", "unchecked"
    ),
    Adaptation(
        "the alarms, the SNS email subscription and the dashboard",
        "created, never evaluated, delivered or rendered",
        "only their creation is rehearsed",
    ),
    Adaptation(
        "the reconcile schedule firing (EventBridge Scheduler)",
        "the rehearsal is shorter than ReconcileSchedule",
        "an execution with the schedule's input {} is started by hand",
    ),
    Adaptation(
        "sam deploy --guided",
        "it asks questions",
        "its answers given with --parameter-overrides and --no-confirm-changeset",
    ),
]
