"""The local studio: Starlette routes over the library, server-rendered Jinja pages, Server-Sent Events.

Pages read the store through ``views`` and ``objects``; actions call what the commands call
(``launcher`` for Start, Stop and Retry, ``model_registry.decide`` for approvals, ``LocalEndpoints`` for
deployments). Live pages subscribe to an event stream that sends an execution's state (or the list of
executions) each time its record changes on disk; nothing is polled by the browser.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipelines import model_registry
from pipelines.catalog import checked_overrides, specs_of
from pipelines.check_results import check_results
from pipelines.config import PipelineConfig
from pipelines.errors import (
    DefinitionError,
    EndpointError,
    EndpointNotFoundError,
    ExecutionError,
    ModelPackageError,
    NotFoundError,
    PipelineError,
    UnsafePathError,
)
from pipelines.local import executions, launcher, safe_files
from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.registry import MAX_VERSION, check_version
from pipelines.local.store import Store
from pipelines.progress import readable
from pipelines.selection import MAX_SELECTED, Selection
from pipelines.studio import objects, views
from pipelines.studio.layout import NODE_HEIGHT, NODE_WIDTH
from pipelines.studio.security import TokenGate

WATCH_SECONDS = 0.4  # how often an event stream looks at the records' modification times
FOLLOW_BYTES = 1 << 20  # what a log stream reads at a time
STATIC = Path(__file__).parent / "static"


@dataclass
class Studio:
    """What every handler needs: the store, the configuration runs start with, and the token."""

    store: Store
    config: PipelineConfig
    token: str
    mlflow_ui: str | None = None  # where MLflow's UI for the store's tracking database is served, if it is

    def registry(self) -> model_registry.LocalModelRegistry:
        """The store's registry; NotFoundError where none exists (looking must not create an empty one)."""
        if not (self.store.root / "registry.sqlite").is_file():
            raise NotFoundError(f"there is no model registry in the store {self.store.root} yet: a run that "
                                "registers a model creates it")
        return model_registry.LocalModelRegistry(self.store, self.config.region)

    def endpoints(self) -> LocalEndpoints:
        return LocalEndpoints(self.store, image_programs=dict(self.config.local_image_programs))


def create_app(store_root: Path, config: PipelineConfig, token: str, mlflow_ui: str | None = None) -> Any:
    """The studio's ASGI application for ``store_root``; every request must carry ``token``. ``mlflow_ui`` is
    the address of an ``mlflow ui`` serving the store's tracking database, for links to each run."""
    studio = Studio(Store(store_root.resolve()), config, token, mlflow_ui)
    templates = Environment(loader=PackageLoader("pipelines.studio", "templates"), autoescape=select_autoescape())
    templates.filters["seconds"] = _seconds
    templates.filters["json"] = lambda value: json.dumps(value, indent=2, default=str)
    templates.globals.update(token=token, node_width=NODE_WIDTH, node_height=NODE_HEIGHT)
    templates.globals["mlflow_link"] = lambda run: views.mlflow_link(run, studio.mlflow_ui)
    templates.filters["plain"] = views.plain

    def page(template: str, code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(template).render(**context), code)

    def guarded(handler: Callable[..., Any], api: bool = False) -> Callable[[Request], Any]:
        """Typed errors as a page (or JSON) saying what to fix, with the status HTTP has for them."""
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except PipelineError as exc:
                status = 403 if isinstance(exc, UnsafePathError) else \
                    404 if isinstance(exc, (NotFoundError, EndpointNotFoundError)) else 400
                if api:
                    return JSONResponse({"error": str(exc)}, status)
                return page("error.html", status, message=str(exc), status=status)
        return endpoint

    async def home(request: Request) -> Response:
        rows = [views.summary_row(studio.store, r) for r in views.records(studio.store)]
        return page("home.html", pipelines=views.pipelines(studio.store), executions=rows[:50],
                    store=studio.store.root)

    async def pipeline(request: Request) -> Response:
        name = request.path_params["name"]
        found = executions.pipeline_records(studio.store.root, name)
        definition, source = executions.latest_definition(studio.store.root, name, found)
        return page("pipeline.html", name=name, executions=[views.summary_row(studio.store, r) for r in found],
                    graph=views.graph(definition), definition_from=source,
                    parameters=views.parameters(definition, specs_of(name, studio.config)))

    async def definition_download(request: Request) -> Response:
        definition, _ = executions.latest_definition(studio.store.root, request.path_params["name"])
        return Response(json.dumps(definition, indent=2), media_type="application/json",
                        headers={"Content-Disposition": _attachment(f"{request.path_params['name']}.json")})

    async def definition_diff(request: Request) -> Response:
        first, second = request.query_params.get("a", ""), request.query_params.get("b", "")
        return page("diff.html", name=request.path_params["name"], first=first, second=second,
                    lines=views.definition_diff(studio.store, first, second))

    async def start(request: Request) -> Response:
        name = request.path_params["name"]
        body = await _json_body(request)
        given = {k: v for k, v in _parameters(body).items() if v.strip() != ""}
        definition, _ = executions.latest_definition(studio.store.root, name)
        overrides, problems = checked_overrides(definition, name, studio.config, given)
        if problems:
            return JSONResponse({"errors": problems}, 400)
        execution_id = await asyncio.to_thread(launcher.start, studio.store.root, studio.config, definition, name,
                                               overrides)
        return JSONResponse({"execution_id": execution_id, "url": f"/executions/{execution_id}"})

    async def execution(request: Request) -> Response:
        record, definition = _execution(studio, request.path_params["id"])
        return page("execution.html", state=views.state(studio.store, record, definition, studio.mlflow_ui),
                    graph=views.graph(definition))

    async def execution_state(request: Request) -> Response:
        record, definition = _execution(studio, request.path_params["id"])
        return JSONResponse(views.state(studio.store, record, definition, studio.mlflow_ui))

    async def execution_events(request: Request) -> Response:
        execution_id = request.path_params["id"]
        _execution(studio, execution_id)
        path = executions.execution_dir(studio.store.root, execution_id) / executions.RECORD

        def current() -> str:
            record, definition = _execution(studio, execution_id)
            return json.dumps(views.state(studio.store, record, definition, studio.mlflow_ui), default=str)

        return _event_stream(request, lambda: _mtimes([path]), current)

    async def list_events(request: Request) -> Response:
        def current() -> str:
            return json.dumps([views.summary_row(studio.store, r) for r in views.records(studio.store)][:200],
                              default=str)

        return _event_stream(request, lambda: _mtimes(executions.record_paths(studio.store.root)), current)

    async def rerun(request: Request) -> Response:
        """Selective execution: the chosen steps again, the others' outputs reused from this execution."""
        body = await _json_body(request)
        record, definition = _execution(studio, request.path_params["id"])
        steps = body.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise ExecutionError("choose the steps to run again")
        chosen = tuple(dict.fromkeys(steps))
        if len(chosen) > MAX_SELECTED:
            raise DefinitionError(f"choose 1 to {MAX_SELECTED} steps (SageMaker's limit); got {len(chosen)}",
                                  field="steps")
        selection = Selection(chosen, record.execution_id)
        execution_id = await asyncio.to_thread(launcher.start, studio.store.root, studio.config, definition,
                                               record.pipeline_name, record.parameters, selection)
        return JSONResponse({"execution_id": execution_id, "url": f"/executions/{execution_id}"})

    async def stop(request: Request) -> Response:
        _record(studio, request.path_params["id"])  # an unknown id is a 404, and gets no folder for its lock
        await asyncio.to_thread(launcher.stop, studio.store.root, request.path_params["id"])
        return JSONResponse({"stopping": request.path_params["id"]})

    async def retry(request: Request) -> Response:
        execution_id = _record(studio, request.path_params["id"]).execution_id
        await asyncio.to_thread(launcher.retry, studio.store.root, studio.config, execution_id)
        return JSONResponse({"execution_id": execution_id, "url": f"/executions/{execution_id}"})

    async def step(request: Request) -> Response:
        record, definition = _execution(studio, request.path_params["id"])
        detail = views.step_detail(studio.store, record, definition, request.path_params["step"])
        return page("step.html", execution=record.execution_id, detail=detail)

    async def log_events(request: Request) -> Response:
        path = views.log_file(studio.store, request.path_params["id"], request.path_params["step"],
                              request.query_params.get("host", "algo-1"))
        return StreamingResponse(_follow(request, path, studio, request.path_params["id"]),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def compare(request: Request) -> Response:
        ids = request.query_params.getlist("id")
        if len(ids) < 2:
            raise ExecutionError("compare needs two executions or more: tick them in a pipeline's Executions tab")
        return page("compare.html", comparison=views.comparison(studio.store, ids))

    async def object_page(request: Request) -> Response:
        uri = request.query_params.get("uri", "")
        return page("object.html", shown=objects.preview(studio.store, uri))

    async def raw_object(request: Request) -> Response:
        uri = f"s3://{request.path_params['bucket']}/{request.path_params['key']}"
        handle, size, kind = objects.raw(studio.store, uri)
        # a job wrote it, not us: it may show itself and its images, but never run a script or send a form
        return StreamingResponse(_chunks(handle), media_type=kind,
                                 headers={"Content-Length": str(size), "Content-Security-Policy": "sandbox allow-same-origin",
                                          "X-Content-Type-Options": "nosniff"})

    async def registry(request: Request) -> Response:
        groups = []
        if (studio.store.root / "registry.sqlite").is_file():
            found = studio.registry()
            for group in found.groups():
                versions = [{**p, **model_registry.summary(found, p)} for p in found.list(group)]
                groups.append({"name": group, "versions": list(reversed(versions))})
        return page("registry.html", groups=groups)

    async def version(request: Request) -> Response:
        found = studio.registry()
        group, number = request.path_params["group"], _version(request.path_params["version"], "version")
        package = found.describe(group, number)
        return page("version.html", package=package, summary=model_registry.summary(found, package),
                    checks=check_results(package, found.read_text),
                    history=found.history(group, number), mlflow=_registered_by_run(studio, package),
                    endpoints=studio.endpoints().list())

    async def versions_compare(request: Request) -> Response:
        found = studio.registry()
        group = request.path_params["group"]
        numbers = [_version(v, "v") for v in request.query_params.getlist("v")]
        if len(numbers) < 2:
            raise ModelPackageError("compare needs two versions or more: tick them in the registry")
        packages = [found.describe(group, n) for n in numbers]
        ids = [model_registry.registered_by(p) for p in packages]
        return page("versions_compare.html", group=group, packages=packages,
                    summaries=[model_registry.summary(found, p) for p in packages],
                    comparison=views.comparison(studio.store, ids) if all(ids) else None)

    async def decision(request: Request) -> Response:
        body = await _json_body(request)
        group, number = request.path_params["group"], _version(request.path_params["version"], "version")
        status = {"approve": "Approved", "reject": "Rejected"}.get(_field(body, "decision", str, ""))
        if status is None:
            raise ModelPackageError("decision must be approve or reject")
        package = await asyncio.to_thread(model_registry.decide, studio.registry(), group, number, status,
                                          _field(body, "comment", str, ""), "comment")
        return JSONResponse({"status": package["ModelApprovalStatus"], "version": package["ModelPackageVersion"]})

    async def deploy(request: Request) -> Response:
        body = await _json_body(request)
        group, number = request.path_params["group"], _version(request.path_params["version"], "version")
        package = studio.registry().describe(group, number)
        if package["ModelApprovalStatus"] != "Approved":
            raise ModelPackageError(f"{group} version {number} is {package['ModelApprovalStatus']}; only an Approved "
                                    "version is deployed")
        record = await asyncio.to_thread(studio.endpoints().deploy, _field(body, "endpoint", str, ""), package)
        return JSONResponse({"endpoint": record["EndpointName"], "url": record["Url"]})

    async def endpoints_page(request: Request) -> Response:
        return page("endpoints.html", endpoints=studio.endpoints().list())

    async def undeploy(request: Request) -> Response:
        await asyncio.to_thread(studio.endpoints().delete, request.path_params["name"])
        return JSONResponse({"deleted": request.path_params["name"]})

    async def invoke(request: Request) -> Response:
        body = await _json_body(request)
        record = studio.endpoints().describe(request.path_params["name"])
        if not record.get("Url"):  # created through the local SageMaker API, and Failed before it served
            raise EndpointError(f"endpoint {record['EndpointName']} is {record['EndpointStatus']}: it has no server "
                                "to answer")
        status, text = await asyncio.to_thread(_invoke, record["Url"], _field(body, "body", str, ""))
        return JSONResponse({"status": status, "body": text})

    pages = [("/", home), ("/pipelines/{name}", pipeline), ("/pipelines/{name}/definition.json", definition_download),
             ("/pipelines/{name}/diff", definition_diff), ("/executions/{id}", execution),
             ("/executions/{id}/steps/{step}", step), ("/compare", compare), ("/objects", object_page),
             ("/s3/{bucket}/{key:path}", raw_object), ("/registry", registry),
             ("/registry/{group}/compare", versions_compare), ("/registry/{group}/{version}", version),
             ("/endpoints", endpoints_page)]
    streams = [("/api/events", list_events), ("/api/executions/{id}/events", execution_events),
               ("/api/executions/{id}/steps/{step}/log", log_events)]
    api = [("/api/executions/{id}", execution_state, "GET"), ("/api/pipelines/{name}/start", start, "POST"),
           ("/api/executions/{id}/stop", stop, "POST"), ("/api/executions/{id}/rerun", rerun, "POST"), ("/api/executions/{id}/retry", retry, "POST"),
           ("/api/registry/{group}/{version}/decision", decision, "POST"),
           ("/api/registry/{group}/{version}/deploy", deploy, "POST"),
           ("/api/endpoints/{name}/delete", undeploy, "POST"), ("/api/endpoints/{name}/invoke", invoke, "POST")]
    routes = [Route(path, guarded(handler)) for path, handler in pages]
    routes += [Route(path, guarded(handler, api=True)) for path, handler in streams]
    routes += [Route(path, guarded(handler, api=True), methods=[method]) for path, handler, method in api]
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    return TokenGate(Starlette(routes=routes), token)


def _execution(studio: Studio, execution_id: str) -> tuple[executions.ExecutionRecord, dict[str, Any]]:
    record = _record(studio, execution_id)
    return record, executions.load_definition(studio.store.root, execution_id)


def _registered_by_run(studio: Studio, package: dict[str, Any]) -> dict[str, str] | None:
    """The MLflow run of the execution that registered a version, as the pages show it (None if not known)."""
    try:
        return views.mlflow_run(studio.store, *_execution(studio, model_registry.registered_by(package)))
    except PipelineError:  # a version registered by other means, or by an execution no longer in the store
        return None


def _record(studio: Studio, execution_id: str) -> executions.ExecutionRecord:
    """The execution's record; NotFoundError (a 404) if the store has none by that id."""
    path = executions.execution_dir(studio.store.root, execution_id) / executions.RECORD
    if safe_files.kind(studio.store.root, path) is None:
        raise NotFoundError(f"no execution {execution_id!r} in the store {studio.store.root}")
    return executions.load(studio.store.root, execution_id)


async def _json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object (its size is capped by the token gate); DefinitionError naming the body."""
    try:
        body = json.loads(await request.body() or b"{}", parse_constant=_not_json)
        json.dumps(body, ensure_ascii=False).encode()  # finds a lone surrogate, which no later step could write
    except RecursionError:
        raise DefinitionError("the request body nests too deeply to be read (a studio request nests a few "
                              "levels)") from None
    except UnicodeEncodeError:
        raise DefinitionError("the request body holds a \\u escape of half a character (a lone surrogate)") from None
    except ValueError:
        raise DefinitionError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise DefinitionError("the request body must be a JSON object")
    return body


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # Python's reader takes NaN and Infinity; JSON has no such number


def _parameters(body: dict[str, Any]) -> dict[str, str]:
    """Start's parameter values as typed text; DefinitionError naming one that is not a string, number or boolean."""
    given = {}
    for name, value in _field(body, "parameters", dict, {}).items():
        # a bool is an int; 1e999 is read as an infinite float
        if not isinstance(value, (str, int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            raise DefinitionError(f"must be a string, a number or a boolean; got {type(value).__name__}",
                                  field=f"parameters.{name}")
        given[name] = str(value)
    return given


def _version(text: str, field: str) -> int:
    """A model package version named by a request: ASCII digits only (``int()`` also reads '١', ' 1' and '1_0')."""
    if not re.fullmatch(r"[0-9]{1,19}", text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ModelPackageError(f"{field}: model package version {shown!r} must be a whole number from 1 to "
                                f"{MAX_VERSION}")
    return check_version(int(text))


def _attachment(filename: str) -> str:
    """Content-Disposition for a download (RFC 6266): an ASCII name for old clients, the real one in UTF-8."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


def _field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """``body[name]`` (``default`` where it is absent); DefinitionError naming the field if it has another type."""
    value = body.get(name, default)
    if not isinstance(value, kind):
        raise DefinitionError(f"must be {'an object' if kind is dict else 'a string'}; got {type(value).__name__}",
                              field=name)
    return value


def _mtimes(paths: list[Path]) -> tuple[Any, ...]:
    found = []
    for path in paths:
        try:
            found.append((path.name, path.stat().st_mtime_ns))
        except OSError:
            found.append((path.name, None))
    return tuple(found)


def _event_stream(request: Request, version: Callable[[], Any], current: Callable[[], str]) -> StreamingResponse:
    """An event each time ``version()`` changes (and one at once), carrying ``current()``."""
    async def events() -> AsyncIterator[str]:
        seen = object()
        while not await request.is_disconnected():
            now = await asyncio.to_thread(version)
            if now != seen:
                seen = now
                try:
                    yield f"data: {await asyncio.to_thread(current)}\n\n"
                except PipelineError as exc:  # a record caught mid-rename, or removed: say so, keep watching
                    yield f"event: problem\ndata: {json.dumps(str(exc))}\n\n"
            await asyncio.sleep(WATCH_SECONDS)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _follow(request: Request, path: Path, studio: Studio, execution_id: str) -> AsyncIterator[str]:
    """A log's lines as events, then the lines it grows by while its execution runs."""
    offset = 0
    while not await request.is_disconnected():
        running = executions.ExecutionLock(studio.store.root, execution_id).is_held_elsewhere()
        try:
            with safe_files.open_read(studio.store.root, path) as handle:  # a link planted meanwhile: refused
                handle.seek(offset)
                chunk = handle.read(FOLLOW_BYTES)
        except FileNotFoundError:
            chunk = b""
        except PipelineError as exc:
            yield f"event: problem\ndata: {json.dumps(str(exc))}\n\n"
            return
        # whole lines only while the job may still write the rest; a line longer than a chunk comes in pieces
        end = chunk.rfind(b"\n") + 1 if running and len(chunk) < FOLLOW_BYTES else len(chunk)
        offset += end
        for line in chunk[:end].decode("utf-8", errors="replace").splitlines():
            yield f"data: {json.dumps(readable(line))}\n\n"
        if not running and len(chunk) < FOLLOW_BYTES:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(WATCH_SECONDS)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """An open file's bytes, a chunk at a time, closing it at the end (or when the client goes)."""
    with handle:
        while chunk := handle.read(FOLLOW_BYTES):
            yield chunk


def _invoke(url: str, body: str) -> tuple[int, str]:
    """POST a CSV row to a local endpoint (InvokeEndpoint's request), its status and answer."""
    request = urllib.request.Request(url.rstrip("/") + "/invocations", data=body.encode(), method="POST",
                                     headers={"Content-Type": "text/csv"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return 502, f"the endpoint did not answer: {exc}"


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.1f}s" if value < 120 else f"{int(value // 60)}m {int(value % 60):02d}s"


