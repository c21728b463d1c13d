"""The daily job's executor: a run's independent steps side by side, in threads of one process.

The warehouse is one DuckDB file, which one process holds at a time, so steps cannot run in
processes of their own (Dagster's multiprocess executor); Dagster's in-process executor runs
them one after another, which leaves a core idle while the checks, scoring, the list, the
report and publication (mostly single-threaded Python and DuckDB queries) wait for each other.
This executor keeps Dagster's in-process behaviour (one process, one log capture, events in
order per step, a failed blocking check skips what depends on it) and runs up to `threads`
ready steps at once. DuckDB connections of one process share the database, so the steps'
own connections to the warehouse do not exclude each other.

A step tagged RUNS_ALONE (the dbt build, whose own process writes the warehouse) runs by
itself in the main thread: no other step of the run starts before it ends, and an interrupt
(run termination) reaches it as it does under the in-process executor. Other steps cannot be
stopped half-way: on an interrupt no new step starts, running ones finish, then the run stops.
"""

import queue
import threading
from collections.abc import Iterator
from contextlib import ExitStack

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor

RUNS_ALONE = "arrears/runs_alone"  # op tag; value "true"
# Dagster's op tag: of the steps ready at once, higher numbers start first (default 0). The daily
# run's longest chain after dbt is scoring -> the list; they carry it so the short checks wait.
PRIORITY = "dagster/priority"
_FINISHED = object()
_POLL_SECONDS = 0.2  # how often a waiting run looks for an interrupt


def runs_alone(step) -> bool:
    return step.tags.get(RUNS_ALONE) == "true"


def _run_step(step_context, events: queue.SimpleQueue) -> None:
    """A worker thread: the step's events go to the run's thread, which logs nothing itself (each
    event was stored as it was made, as in the in-process executor) but tracks the plan."""
    key = step_context.step.key
    try:
        for event in dagster_event_sequence_for_step(step_context):
            events.put((key, event))
    except BaseException as error:  # noqa: BLE001 - handed to the run's thread, which raises it
        events.put((key, error))
        return
    events.put((key, _FINISHED))


def _threaded_plan_iterator(job_context: PlanExecutionContext, execution_plan: ExecutionPlan,
                            threads: int) -> Iterator[DagsterEvent]:
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    with ExitStack() as stack:
        concurrency = stack.enter_context(InstanceConcurrencyContext(job_context.instance, job_context.dagster_run))
        active = stack.enter_context(execution_plan.start(
            retry_mode=job_context.retry_mode, instance_concurrency_context=concurrency,
            step_dependency_config=job_context.step_dependency_config))
        # one log capture for the whole process, as the in-process executor does
        log_key = compute_log_manager.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        log_context = stack.enter_context(compute_log_manager.capture_logs(log_key))
        yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)

        events: queue.SimpleQueue = queue.SimpleQueue()
        running: dict[str, tuple] = {}  # step key -> (step context, its events so far)
        waiting: list = []  # steps handed out by the plan, not started yet
        interrupted = False
        while running or waiting or (not interrupted and not active.is_complete):
            if not interrupted and active.check_for_interrupts():
                interrupted = True
                active.mark_interrupted()
                yield DagsterEvent.engine_event(job_context, "Run interrupted: no new step starts; "
                                                f"waiting for {sorted(running)}", EngineEventData())
            if not interrupted:
                free = threads - len(running) - len(waiting)
                if free > 0 and not active.is_complete:
                    waiting.extend(active.get_steps_to_execute(limit=free))
                yield from active.concurrency_event_iterator(job_context)
                while waiting:
                    step = waiting[0]
                    if runs_alone(step):
                        if running:
                            break  # it waits for the running steps; nothing starts before it
                        waiting.pop(0)
                        yield from _in_this_thread(job_context, active, step)
                        continue
                    waiting.pop(0)
                    step_context = job_context.for_step(step, active.get_known_state())
                    running[step.key] = (step_context, [])
                    threading.Thread(target=_run_step, args=(step_context, events), daemon=True,
                                     name=f"step {step.key}").start()
            elif waiting:
                waiting.clear()  # handed out but never started: the run stops without them
            if not running:
                if not waiting and not interrupted and not active.is_complete:
                    active.sleep_til_ready()
                continue
            try:
                key, item = events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            step_context, step_events = running[key]
            if item is _FINISHED:
                del running[key]
                yield from _step_finished(job_context, active, step_context, step_events)
            elif isinstance(item, DagsterEvent):
                step_events.append(item)
                yield item
                active.handle_event(item)
            else:  # the step's thread failed outside the step's own error handling
                raise item
        if interrupted:
            raise DagsterExecutionInterruptedError()


def _in_this_thread(job_context, active, step) -> Iterator[DagsterEvent]:
    """A step run as the in-process executor runs it."""
    step_context = job_context.for_step(step, active.get_known_state())
    step_events = []
    for event in dagster_event_sequence_for_step(step_context):
        step_events.append(event)
        yield event
        active.handle_event(event)
    yield from _step_finished(job_context, active, step_context, step_events)


def _step_finished(job_context, active, step_context, step_events: list) -> Iterator[DagsterEvent]:
    """After a step's last event, as the in-process executor does: the plan's skips, then hooks."""
    active.verify_complete(job_context, step_context.step.key)
    for event in active.plan_events_iterator(job_context):
        step_events.append(event)
        yield event
    yield from _trigger_hook(step_context, step_events)


class ThreadedInProcessExecutor(Executor):
    def __init__(self, retries: RetryMode, threads: int):
        self._retries = retries
        self.threads = threads

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        yield DagsterEvent.engine_event(
            plan_context, f"Executing steps in process, up to {self.threads} at once", EngineEventData())
        yield from ExecuteRunWithPlanIterable(
            execution_plan=plan_context.execution_plan,
            iterator=lambda job_context, execution_plan: _threaded_plan_iterator(job_context, execution_plan,
                                                                                self.threads),
            execution_context_manager=PlanExecutionContextManager(
                job=plan_context.job,
                retry_mode=plan_context.retry_mode,
                execution_plan=plan_context.execution_plan,
                run_config=plan_context.run_config,
                dagster_run=plan_context.dagster_run,
                instance=plan_context.instance,
                raise_on_error=plan_context.raise_on_error,
                output_capture=plan_context.output_capture,
            ),
        )


@dg.executor(
    name="threaded_in_process",
    config_schema={
        "retries": get_retries_config(),
        "threads": dg.Field(int, default_value=2, description="Steps run at once (one per core here)."),
    },
)
def threaded_in_process_executor(init_context) -> ThreadedInProcessExecutor:
    """Ready steps side by side in threads of the run's process; RUNS_ALONE steps by themselves."""
    config = init_context.executor_config
    return ThreadedInProcessExecutor(RetryMode.from_config(config["retries"]), config["threads"])
