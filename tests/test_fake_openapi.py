"""Every JSON answer of the fake, and every request body the tap sends, against Intercom's OpenAPI.

For each API version the fake serves (2.14, 2.16, Preview), a tap run of every stream and a list
of direct calls (errors, refusals, limits) go through a fake of that version; each JSON answer is
validated against the response schema Intercom's description of that version gives for its path,
method and status, and each POST body the tap sent against the request schema. Strict on top: a
property the schema does not declare is an error too (the fake must not invent fields).

The descriptions are read from `$INTERCOM_OPENAPI_DIR`, by default `../shared/intercom/openapi`
next to the repository (never committed here). Where the fake departs from a description on
purpose, `DEPARTURES` says so with its source; a departure no answer needs any more fails too.
"""

from __future__ import annotations

import os
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml
from fake_intercom.core import RateLimiter

from tap_intercom_export.content.streams import MessageExportJobsStream
from tap_intercom_export.events.fanout import ContactFanOutStream
from tests.conftest import DAY, NOW, TOKEN, run_tap
from tests.reporting_helpers import rclock

__all__ = ["rclock"]

REPO = Path(__file__).resolve().parent.parent
OPENAPI_DIR = Path(
    os.environ.get("INTERCOM_OPENAPI_DIR") or REPO.parent / "shared" / "intercom" / "openapi"
)
#: Intercom-Version -> the folder of github.com/intercom/Intercom-OpenAPI's descriptions/.
VERSIONS = {"2.14": "2.14", "2.16": "2.16", "Preview": "0"}
WHERE = (
    "get descriptions/2.14, descriptions/2.16 and descriptions/0 (Preview) from "
    "https://github.com/intercom/Intercom-OpenAPI and set INTERCOM_OPENAPI_DIR to the folder that "
    "holds them (as <version>/api.intercom.io.yaml or api.intercom.io-<version>.yaml)"
)
ERRORS_PAGE = "https://developers.intercom.com/docs/references/rest-api/errors/http-responses"


@dataclass(frozen=True)
class Departure:
    """Where the fake answers what the description does not describe, on purpose."""

    what: str
    source: str
    versions: tuple[str, ...] = tuple(VERSIONS)
    #: (method, path template or literal path, status) of the answers it covers.
    answer: tuple[str, str, int] | None = None
    #: Validate such answers against this component schema instead (None: not validated).
    schema: str | None = None
    #: Or: validation errors it covers, by the error's instance path and message.
    error: tuple[str, str] | None = None


DEPARTURES = [
    Departure(
        "GET /events without summary=true answers an event.list; the description's only 200 "
        "schema is the summary",
        "Intercom's 'List all data events' example; the list is the data_event_list schema",
        answer=("GET", "/events", 200),
        schema="data_event_list",
    ),
    Departure(
        "A second pending export job is refused with 429 'Exceeded rate limit of 1 pending "
        "message data export jobs'",
        "the create endpoint's description (prose), not its responses",
        answer=("POST", "/export/content/data", 429),
        schema="error",
    ),
    Departure(
        "A job that ran over 12 hours answers HTTP 504 with the job model as body, status failed",
        "help page 'Retrieve a job status' (https://developers.intercom.com/docs/references/"
        "rest-api/api.intercom.io/data-export/getdataexport)",
        answer=("GET", "/export/content/data/{job_identifier}", 504),
        schema="data_export",
    ),
    Departure(
        "download_url in the form of Intercom's examples "
        "(/download/messages/data/message-data-export.<id>.<uuid>.csv): a path the description "
        "does not list; its 404 is an error.list",
        "the examples of 'Retrieve the exported data'",
        answer=("GET", "/download/messages/data/{name}", 404),
        schema="error",
    ),
    Departure(
        "Error answers whose status the operation does not list (401 on every route, 400 for "
        "an unknown Intercom-Version, 404, 406 without Accept: application/octet-stream, 429 "
        "over the rate limit, 403 without a permission) are error.list bodies",
        f"Intercom's error reference: every error is an error.list ({ERRORS_PAGE})",
        answer=("*", "*", 0),
        schema="error",
    ),
    Departure(
        "Event summaries carry description: null when the event has none",
        "the reference's summary example; the description's README lists it as a known gap",
        error=(r"events/\d+/description", "None is not of type 'string'"),
    ),
    Departure(
        "Event metadata values are numbers, dates (unix seconds) and objects (links, money), "
        "not only strings",
        "'Submit a data event' (metadata types); Preview's schema allows them",
        versions=("2.14", "2.16"),
        error=(r"events/\d+/metadata/\w+", "is not of type 'string'"),
    ),
    Departure(
        "A contact without an email has email: null, in the contact list and on its events",
        "the contacts reference's examples of leads; Intercom-OpenAPI's schemas forget it",
        error=(r"(data/\d+/|events/\d+/)?email", "None is not of type 'string'"),
    ),
    Departure(
        "A lead's events and event summary carry user_id: null (a lead has no external_id, "
        "which the contact schema makes nullable)",
        "the contact schema's nullable external_id; the event schemas forget it",
        error=(r"(events/\d+/)?user_id", "None is not of type 'string'"),
    ),
    Departure(
        "An event summary of many event names comes in pages: `pages` with `next`",
        "the reference's example of the summary response (the schema has no `pages`)",
        error=("", "'pages' was unexpected"),
    ),
    Departure(
        "GET /me's app has `secure`",
        "the 'Identify an admin' example of every version; the app schema does not declare it",
        error=("app", "'secure' was unexpected"),
    ),
]


# -- the descriptions -------------------------------------------------------------------------


def description_file(version: str) -> Path | None:
    """Where the description of one version is, in either layout."""
    name = "preview" if version == "Preview" else version
    folder = VERSIONS[version]
    for candidate in (
        OPENAPI_DIR / f"api.intercom.io-{name}.yaml",
        OPENAPI_DIR / folder / "api.intercom.io.yaml",
        OPENAPI_DIR / "descriptions" / folder / "api.intercom.io.yaml",
    ):
        if candidate.exists():
            return candidate
    return None


def json_schema(node: t.Any) -> t.Any:
    """An OpenAPI 3.0 schema as JSON Schema 2020-12: `nullable` as a null type, strict objects."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if "properties" in out and "additionalProperties" not in out:
        out["unevaluatedProperties"] = False  # a field the schema does not declare is an error
    if node.get("nullable") is True:
        if "type" in out and "$ref" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Description:
    """One version's description: operations by path, and validators for their schemas."""

    def __init__(self, path: Path) -> None:
        """Read the YAML and turn its schemas into JSON Schema."""
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        self.paths = doc["paths"]
        self.components = json_schema(doc["components"])
        self.templates = [
            (template, re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"))
            for template in self.paths
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, t.Any]] | None:
        """The template and operation that serve `method path`; literal paths first."""
        found = sorted(
            (template.count("{"), template)
            for template, rx in self.templates
            if rx.match(path) and method.lower() in self.paths[template]
        )
        if not found:
            return None
        template = found[0][1]
        return template, self.paths[template][method.lower()]

    def validator(self, schema: dict[str, t.Any]) -> jsonschema.Draft202012Validator:
        """A validator of `schema`, its `#/components/...` references resolved in this document."""
        root = {**json_schema(schema), "components": self.components}
        return jsonschema.Draft202012Validator(
            root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

    def component(self, name: str) -> dict[str, t.Any]:
        """A reference to a component schema."""
        return {"$ref": f"#/components/schemas/{name}"}


@pytest.fixture(scope="module", params=list(VERSIONS))
def version(request: pytest.FixtureRequest) -> tuple[str, Description]:
    """An API version and its description; skipped (saying where to get it) when absent."""
    path = description_file(request.param)
    if path is None:
        pytest.skip(
            f"Intercom's OpenAPI description of {request.param} not in {OPENAPI_DIR}: {WHERE}"
        )
    return request.param, Description(path)


# -- what the fake answers --------------------------------------------------------------------


def exercise(fake: t.Any, version: str) -> None:
    """A tap run of every stream, then the calls that provoke the answers a sync does not."""
    run_tap(
        {
            "access_token": TOKEN,
            "api_url": fake.url,
            "intercom_version": version,
            "start_date": "2023-10-25T00:00:00Z",
            "end_date": "2023-11-14T00:00:00Z",
            "export_window_days": 7,
            "export_poll_interval_seconds": 5,
            "events_per_page": 5,
            "reporting_window_days": 7,
            "reporting_lookback_days": 0,
        }
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": version}

    def call(method: str, path: str, **kwargs: t.Any) -> requests.Response:
        kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
        return requests.request(method, f"{fake.url}{path}", timeout=10, **kwargs)

    contact = fake.events.contacts[0].id
    call("GET", "/me")
    for status in (401, 403):
        fake.workspace.me_status = status
        call("GET", "/me")
    fake.workspace.me_status = None
    call("GET", "/contacts", headers={"Authorization": "Bearer wrong"})
    call("GET", "/contacts", headers={"Intercom-Version": "1.0"})
    call("GET", "/contacts", params={"per_page": 500})
    call("GET", f"/contacts/{contact}")
    call("GET", "/contacts/nobody")
    call("GET", "/events", params={"type": "user", "intercom_user_id": "nobody"})
    call("GET", "/events", params={"type": "company", "intercom_user_id": contact})
    fake.events.summary_per_page = 1  # a summary in pages, as the reference's example has it
    busy = max(fake.events.contacts, key=lambda c: len({e.name for e in fake.events.events[c.id]}))
    call("GET", "/events", params={"type": "user", "intercom_user_id": busy.id, "summary": "true"})
    call("GET", "/no/such/route")
    # Message export: a job, a second one refused, its cancel; a bad create; a 504 failed job.
    window = {"created_at_after": NOW - 2 * DAY, "created_at_before": NOW - DAY}
    job = call("POST", "/export/content/data", json=window).json()
    job_id = job.get("job_identifier") or job["job_identfier"]
    call("POST", "/export/content/data", json=window)
    call("POST", f"/export/cancel/{job_id}")
    call("POST", "/export/content/data", json={"created_at_after": "soon"})
    call("GET", "/export/content/data/nojob")
    fake.exports.next_scripts.append(["pending", "failed_504"])
    failing = call("POST", "/export/content/data", json=window).json()
    call("GET", f"/export/content/data/{failing.get('job_identifier') or failing['job_identfier']}")
    call("GET", "/download/content/data/nojob", headers={"Accept": "application/octet-stream"})
    call("GET", "/download/messages/data/message-data-export.nojob.x.csv")
    done = next(j for j in fake.exports.jobs.values() if j.archive is not None)
    call("GET", f"/download/content/data/{done.job_id}", headers={"Accept": "text/csv"})
    # Reporting: refused bodies, five pending jobs and a sixth, unknown jobs, no permission.
    ids = [
        a.qualified_id if fake.at_least(2, 16) else a.id
        for a in fake.reporting.datasets[1].attributes
    ]
    body = {"dataset_id": "tickets", "attribute_ids": ids, "start_time": NOW - DAY, "end_time": NOW}
    for bad in ({"dataset_id": "imaginary"}, {"attribute_ids": []}, {"attribute_ids": ["nope"]}):
        call("POST", "/export/reporting_data/enqueue", json={**body, **bad})
    call("POST", "/export/reporting_data/enqueue", json={"dataset_id": "tickets"})
    for _ in range(6):
        call("POST", "/export/reporting_data/enqueue", json=body)
    call("GET", "/export/reporting_data/nojob")
    call("GET", "/download/reporting_data/nojob", headers={"Accept": "application/octet-stream"})
    fake.reporting.forbidden = True
    call("GET", "/export/reporting_data/get_datasets")
    # Over the rate limit.
    fake.limiter = RateLimiter(1, 60.0)
    call("GET", "/me")
    call("GET", "/me")


@dataclass
class Report:
    """What one version's answers came to."""

    validated: dict[str, int] = field(default_factory=dict)
    departures: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, bucket: dict[str, int], key: str) -> None:
        """Add one to a counter."""
        bucket[key] = bucket.get(key, 0) + 1


def covering(
    version: str, method: str, template: str, status: int, *, listed: bool
) -> Departure | None:
    """The departure that covers an answer without its own schema, if any."""
    for departure in DEPARTURES:
        if departure.answer is None or version not in departure.versions:
            continue
        want_method, want_path, want_status = departure.answer
        if (want_method, want_path, want_status) == (method, template, status):
            return departure
    if not listed and status >= 400:
        return next(d for d in DEPARTURES if d.answer == ("*", "*", 0))
    return None


def flatten(errors: t.Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Errors, those of a nullable reference (`anyOf` [schema, null]) replaced by the schema's."""
    out = []
    for error in errors:
        branches = error.schema.get("anyOf", []) if isinstance(error.schema, dict) else []
        if error.validator == "anyOf" and {"type": "null"} in branches and error.context:
            out += flatten(e for e in error.context if e.schema_path[0] == 0)
        else:
            out.append(error)
    return out


def check_answer(desc: Description, version: str, request: t.Any, report: Report) -> None:
    """Validate one logged answer, counting it as validated, departed or failed."""
    response = request.response
    if response is None or response.file or response.body is None:
        return
    found = desc.operation(request.method, request.path)
    template = found[0] if found else re.sub(r"/[^/]+$", "/{name}", request.path)
    responses = found[1].get("responses", {}) if found else {}
    spec = responses.get(str(response.status)) or {}
    schema = spec.get("content", {}).get("application/json", {}).get("schema")
    label = f"{request.method} {template} {response.status}"
    departure = None
    if schema is None or (found and found[0] == "/events" and request.arg("summary") != "true"):
        departure = covering(version, request.method, template, response.status, listed=bool(spec))
        if departure is None:
            report.failures.append(f"{label}: no schema in the description and no departure")
            return
        schema = desc.component(departure.schema) if departure.schema else None
        report.count(report.departures, departure.what)
    if schema is None:
        return
    for error in flatten(desc.validator(schema).iter_errors(response.body)):
        where = "/".join(str(p) for p in error.absolute_path)
        excused = next(
            (
                d
                for d in DEPARTURES
                if d.error
                and version in d.versions
                and re.fullmatch(d.error[0], where)
                and d.error[1] in error.message
            ),
            None,
        )
        if excused is None:
            report.failures.append(f"{label} at {where or '(root)'}: {error.message[:300]}")
        else:
            report.count(report.departures, excused.what)
    report.count(report.validated, label)


def check_request_body(desc: Description, request: t.Any, report: Report) -> None:
    """Validate a POST body the tap sent against the operation's request schema."""
    found = desc.operation(request.method, request.path)
    if found is None or request.body is None:
        return
    content = found[1].get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema")
    if schema is None:
        return
    label = f"request {request.method} {found[0]}"
    for error in desc.validator(schema).iter_errors(request.body):
        report.failures.append(f"{label}: {error.message[:300]}")
    report.count(report.validated, label)


def test_every_answer_matches_the_description(make_fake, rclock, monkeypatch, version) -> None:
    name, desc = version
    monkeypatch.setattr(ContactFanOutStream, "wall_clock", staticmethod(lambda: float(NOW)))
    monkeypatch.setattr(MessageExportJobsStream, "sleep", staticmethod(rclock.sleep))
    fake = make_fake(version=name, contacts=8, events_now=NOW, receipts_per_day=4)
    exercise(fake, name)
    report = Report()
    for request in fake.log:
        check_answer(desc, name, request, report)
    for request in fake.log:
        if request.method == "POST" and request.headers.get("user-agent", "").startswith(
            "tap-intercom-export"
        ):
            check_request_body(desc, request, report)
    bodies = sum(n for label, n in report.validated.items() if label.startswith("request "))
    answers = sum(report.validated.values()) - bodies
    print(f"\n{name}: {answers} answers and {bodies} request bodies validated")
    for label, n in sorted(report.validated.items()):
        print(f"  {n:4} {label}")
    for what, n in sorted(report.departures.items()):
        print(f"  departure x{n}: {what}")
    assert report.failures == [], "\n".join(report.failures)
    unused = [d.what for d in DEPARTURES if name in d.versions and d.what not in report.departures]
    assert unused == [], "departures no answer needs any more: remove them"
    assert any(
        label.startswith("request POST /export/reporting_data/enqueue")
        for label in report.validated
    )
