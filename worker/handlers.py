"""One handler per command type. Handlers validate against current state and either
refuse (`CommandRefused`) or accept, returning the follow-up to run after the answer.
They never run Spark work: that is handed to the stream manager or the batch runner.
Input that needs the settings to judge (own topics, the data directory) is checked by
`worker.input_guard` first, so a refused command has touched nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.commands import (
    BackfillCommand,
    CancelBackfillCommand,
    CancelBatchCommand,
    PingCommand,
    RunBatchCommand,
    ScheduleBatchCommand,
    ShutdownCommand,
    StartStreamCommand,
    StopStreamCommand,
    UnscheduleBatchCommand,
)
from contracts.errors import ErrorCode
from contracts.events import CommandAcceptedData, EventType, worker_subject
from contracts.settings import Settings
from worker.backfill_runner import BackfillRunner
from worker.batch_runner import BatchRunner
from worker.errors import CommandRefused
from worker.health import HealthReporter
from worker.input_guard import (
    check_batch_paths,
    check_run_batch,
    check_source_topic,
    check_start_stream,
)
from worker.publisher import EventPublisher
from worker.scheduler import Scheduler
from worker.signals import StopFlag
from worker.stream_manager import StreamManager

FollowUp = Callable[[], None] | None


class CommandHandlers:
    def __init__(self, settings: Settings, publisher: EventPublisher, health: HealthReporter,
                 stream: StreamManager, batches: BatchRunner, backfills: BackfillRunner,
                 stop_flag: StopFlag, scheduler: Scheduler | None = None) -> None:
        self.settings = settings
        self.publisher = publisher
        self.health = health
        self.stream = stream
        self.batches = batches
        self.backfills = backfills
        self.stop_flag = stop_flag
        self.scheduler = scheduler

    def dispatch(self, command: Any) -> tuple[CommandAcceptedData, FollowUp]:
        handler = getattr(self, f"_on_{command.type}")
        return handler(command)

    def _on_ping(self, command: PingCommand) -> tuple[CommandAcceptedData, FollowUp]:
        def pong() -> None:
            self.publisher.publish(EventType.WORKER_PONG, worker_subject(self.settings.worker_id),
                                   self.health.snapshot(), command_id=command.command_id)

        return CommandAcceptedData(command_type=command.type), pong

    def _on_start_stream(self, command: StartStreamCommand) -> tuple[CommandAcceptedData, FollowUp]:
        check_start_stream(command.payload, self.settings)
        start = self.stream.prepare_start(command.payload, command.command_id)
        return CommandAcceptedData(command_type=command.type), start

    def _on_stop_stream(self, command: StopStreamCommand) -> tuple[CommandAcceptedData, FollowUp]:
        stop = self.stream.prepare_stop(command.command_id)
        return CommandAcceptedData(command_type=command.type), stop

    def _on_run_batch(self, command: RunBatchCommand) -> tuple[CommandAcceptedData, FollowUp]:
        check_run_batch(command.payload, self.settings)
        batch_id, submit = self.batches.prepare_submit(command.payload, command.command_id)
        return CommandAcceptedData(command_type=command.type, batch_id=batch_id), submit

    def _on_cancel_batch(self, command: CancelBatchCommand) -> tuple[CommandAcceptedData, FollowUp]:
        batch_id = command.payload.batch_id
        cancel = self.batches.prepare_cancel(batch_id, command.command_id)
        return CommandAcceptedData(command_type=command.type, batch_id=batch_id), cancel

    def _on_backfill(self, command: BackfillCommand) -> tuple[CommandAcceptedData, FollowUp]:
        check_source_topic(command.payload.topic, self.settings)
        backfill_id, submit = self.backfills.prepare_submit(command.payload, command.command_id)
        return CommandAcceptedData(command_type=command.type, backfill_id=backfill_id), submit

    def _on_cancel_backfill(self, command: CancelBackfillCommand
                            ) -> tuple[CommandAcceptedData, FollowUp]:
        backfill_id = command.payload.backfill_id
        cancel = self.backfills.prepare_cancel(backfill_id, command.command_id)
        return CommandAcceptedData(command_type=command.type, backfill_id=backfill_id), cancel

    def _on_schedule_batch(self, command: ScheduleBatchCommand
                           ) -> tuple[CommandAcceptedData, FollowUp]:
        payload = command.payload
        check_run_batch(payload.batch, self.settings)
        # The longest batch id a slot can have resolves under the data directory too.
        check_batch_paths(f"{payload.schedule_id}-{'0' * 16}", self.settings)
        create = self._scheduler().prepare_create(payload, command.command_id)
        return CommandAcceptedData(command_type=command.type,
                                   schedule_id=payload.schedule_id), create

    def _on_unschedule_batch(self, command: UnscheduleBatchCommand
                             ) -> tuple[CommandAcceptedData, FollowUp]:
        schedule_id = command.payload.schedule_id
        remove = self._scheduler().prepare_remove(schedule_id, command.command_id)
        return CommandAcceptedData(command_type=command.type, schedule_id=schedule_id), remove

    def _scheduler(self) -> Scheduler:
        if self.scheduler is None:
            raise CommandRefused(ErrorCode.INTERNAL_ERROR, "this worker has no scheduler",
                                 retryable=True)
        return self.scheduler

    def _on_shutdown(self, command: ShutdownCommand) -> tuple[CommandAcceptedData, FollowUp]:
        def stop() -> None:
            self.stop_flag.set(f"shutdown command {command.command_id}",
                               command.payload.drain_timeout_seconds)

        return CommandAcceptedData(command_type=command.type), stop
