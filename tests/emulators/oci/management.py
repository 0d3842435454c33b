"""The control-plane reads an operator's tools make before acting, over the services already emulated.

    emu.add_service(Management(functions, ons, scheduler, compartment=COMPARTMENT))

- Functions management (any API version, `/20181201` or `/20260325`): GetFunction, ListFunctions,
  ListApplications. `oci fn function invoke` calls GetFunction first to learn the invoke endpoint, which
  is this emulator's own address (taken from the request's Host), so the CLI invokes here as in the cloud.
  Every registered function belongs to one application, `APPLICATION`. A function carries its
  configuration and its image (`image` as 20181201 has it, `sourceDetails` CONTAINER_IMAGE as 20260325).
- Notifications control plane: GetTopic (`/20181201/topics/{id}`), 404 for an unknown topic;
  ListSubscriptions (`/20181201/subscriptions?compartmentId=&topicId=`): ORACLE_FUNCTIONS, ACTIVE.
- Resource Scheduler: ListSchedules (`/20240430/schedules`), every schedule ACTIVE, with its function, its
  BODY parameter and its last run (`lastRunStatus` SUCCEEDED, or FAILED when the invocation was refused),
  as the service reports them.

Read-only: resources are created in-process (Terraform's job in the cloud).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fusion_extract.clock import isoformat
from tests.emulators.oci.functions import FunctionsService
from tests.emulators.oci.http import Request, Response, Route, ServiceError
from tests.emulators.oci.notifications import NotificationsService
from tests.emulators.oci.scheduler import SchedulerService, schedule_ocid

APPLICATION = "ocid1.fnapp.oc1.emu.fusionextract"
APPLICATION_NAME = "fusion-extract"
_CREATED = isoformat(datetime(2026, 1, 1, tzinfo=UTC))


class Management:
    def __init__(
        self,
        functions: FunctionsService,
        ons: NotificationsService,
        scheduler: SchedulerService,
        *,
        compartment: str,
    ) -> None:
        self.functions = functions
        self.ons = ons
        self.scheduler = scheduler
        self.compartment = compartment

    @property
    def routes(self) -> list[Route]:
        return [
            ("GET", re.compile(r"/\d{8}/functions/(?P<function_id>[^/]+)"), self._get_function),
            ("GET", re.compile(r"/\d{8}/functions"), self._list_functions),
            ("GET", re.compile(r"/\d{8}/applications"), self._list_applications),
            ("GET", re.compile(r"/20181201/topics/(?P<topic_id>[^/]+)"), self._get_topic),
            ("GET", re.compile(r"/20181201/subscriptions"), self._list_subscriptions),
            ("GET", re.compile(r"/20240430/schedules"), self._list_schedules),
        ]

    # -- Functions --------------------------------------------------------------------------------------

    def _function(self, request: Request, function_id: str, name: str) -> dict[str, object]:
        _, config, image = self.functions.deployed(function_id) or (name, {}, "")
        return {
            "id": function_id,
            "displayName": name,
            "applicationId": APPLICATION,
            "compartmentId": self.compartment,
            "lifecycleState": "ACTIVE",
            "image": image,
            "imageDigest": "sha256:" + "0" * 64,
            "sourceDetails": {
                "sourceType": "CONTAINER_IMAGE",
                "image": image,
                "imageDigest": "sha256:" + "0" * 64,
            },
            "config": dict(config),
            "memoryInMBs": 256,
            "timeoutInSeconds": 300,
            "invokeEndpoint": f"http://{request.headers.get('Host', '127.0.0.1')}",
            "timeCreated": _CREATED,
            "timeUpdated": _CREATED,
        }

    def _get_function(self, request: Request, match: re.Match[str]) -> Response:
        name = self.functions.registered().get(match["function_id"])
        if name is None:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"function {match['function_id']} not found")
        return Response.json(200, self._function(request, match["function_id"], name), {"etag": "emu"})

    def _list_functions(self, request: Request, match: re.Match[str]) -> Response:
        if request.query.get("applicationId") != APPLICATION:
            return Response.json(200, [])
        wanted = request.query.get("displayName")
        items = [
            self._function(request, fid, name)
            for fid, name in sorted(self.functions.registered().items())
            if wanted in (None, name)
        ]
        return Response.json(200, items)

    def _list_applications(self, request: Request, match: re.Match[str]) -> Response:
        wanted = request.query.get("displayName")
        if request.query.get("compartmentId") != self.compartment or wanted not in (None, APPLICATION_NAME):
            return Response.json(200, [])
        application = {
            "id": APPLICATION,
            "displayName": APPLICATION_NAME,
            "compartmentId": self.compartment,
            "lifecycleState": "ACTIVE",
            "shape": "GENERIC_X86",
            "timeCreated": _CREATED,
            "timeUpdated": _CREATED,
        }
        return Response.json(200, [application])

    # -- Notifications ----------------------------------------------------------------------------------

    def _get_topic(self, request: Request, match: re.Match[str]) -> Response:
        topic_id = match["topic_id"]
        name = self.ons.topic_name(topic_id)
        if name is None:
            raise ServiceError(404, "NotAuthorizedOrNotFound", f"topic {topic_id} not found")
        topic = {
            "topicId": topic_id,
            "name": name,
            "compartmentId": self.compartment,
            "lifecycleState": "ACTIVE",
            "timeCreated": _CREATED,
            "apiEndpoint": f"http://{request.headers.get('Host', '127.0.0.1')}",
            "etag": "emu",
        }
        return Response.json(200, topic)

    def _list_subscriptions(self, request: Request, match: re.Match[str]) -> Response:
        if not request.query.get("compartmentId"):
            raise ServiceError(400, "MissingParameter", "compartmentId is required")
        if request.query["compartmentId"] != self.compartment:
            return Response.json(200, [])
        wanted = request.query.get("topicId")
        items = [
            {
                "id": f"ocid1.onssubscription.oc1.emu.{topic_id[-12:]}{index}",
                "topicId": topic_id,
                "protocol": "ORACLE_FUNCTIONS",
                "endpoint": function_id,
                "lifecycleState": "ACTIVE",
                "compartmentId": self.compartment,
                "etag": "emu",
            }
            for topic_id in self.ons.topics()
            if wanted in (None, topic_id)
            for index, function_id in enumerate(self.ons.subscriptions(topic_id))
        ]
        return Response.json(200, items)

    # -- Resource Scheduler -----------------------------------------------------------------------------

    def _list_schedules(self, request: Request, match: re.Match[str]) -> Response:
        if request.query.get("compartmentId") not in (None, self.compartment):
            return Response.json(200, {"items": []})
        items = [
            {
                "id": schedule_ocid(schedule.schedule_id),
                "displayName": schedule.schedule_id,
                "compartmentId": self.compartment,
                "action": "START_RESOURCE",
                "recurrenceType": schedule.recurrence_type,
                "recurrenceDetails": schedule.recurrence_details,
                "lifecycleState": "ACTIVE",
                "resources": [
                    {
                        "id": schedule.function_id,
                        "parameters": [{"parameterType": "BODY", "value": [schedule.body]}],
                    }
                ],
                "timeCreated": _CREATED,
                **self._last_run(schedule.schedule_id),
            }
            for schedule in self.scheduler.schedules()
        ]
        return Response.json(200, {"items": items})

    def _last_run(self, schedule_id: str) -> dict[str, str]:
        run = self.scheduler.last_run(schedule_id)
        if run is None:
            return {}
        status = "SUCCEEDED" if run.status < 300 else "FAILED"  # the work request of that firing
        return {"timeLastRun": isoformat(run.fired_at), "lastRunStatus": status}
