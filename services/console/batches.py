"""Batch pages: upload a CSV or XLSX case list, watch each agency's progress live, download the results.

The gateway runs the batch (POST /v1/batches) and streams its progress
(/v1/batches/{id}/events); the console relays both as the officer and
streams the results file through without keeping it.
"""

from aiohttp import web

from services.console.render import GATEWAY, SESSION, Refused, Unauthenticated, ask, fragment, page, requires, sse

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOADS = {".csv": "text/csv", ".xlsx": XLSX}
DOWNLOADS = ("xlsx", "csv")
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


async def batches_page(request: web.Request, errors: dict | None = None, rejected=(), status: int = 200):
    answer = await ask(request, "GET", "/v1/batches")
    batches = answer.body.get("batches", []) if answer.ok else []
    return page(request, "batches.html", status=status, batches=batches, errors=errors or {}, rejected=rejected)


@requires("submitBatch")
async def get_batches(request: web.Request) -> web.Response:
    return await batches_page(request)


@requires("submitBatch")
async def post_batch(request: web.Request) -> web.Response:
    form = await request.post()
    upload = form.get("file")
    name = getattr(upload, "filename", "") or ""
    media = next((t for ext, t in UPLOADS.items() if name.lower().endswith(ext)), None)
    if media is None:
        return await batches_page(request, {"file": "请选择 CSV 或 XLSX 文件 Choose a .csv or .xlsx file"}, status=400)
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return await batches_page(request, {"file": f"文件过大 At most {MAX_UPLOAD_BYTES // 2**20} MiB"}, status=400)
    answer = await request.app[GATEWAY].upload("/v1/batches", request[SESSION].token, data, media)
    if answer.status == 401:
        raise Unauthenticated(answer.message)
    if not answer.ok:
        return await batches_page(request, {"file": answer.message}, answer.body.get("rejected", []),
                                  status=answer.status if answer.status < 500 else 502)
    batch = answer.body
    request[SESSION].flash = ("ok", f"已提交 Submitted {batch['batch_id']}: {batch['total']} rows")
    raise web.HTTPSeeOther(f"/console/batches/{batch['batch_id']}")


@requires("submitBatch")
async def get_batch(request: web.Request) -> web.Response:
    answer = await ask(request, "GET", f"/v1/batches/{request.match_info['batch_id']}")
    if not answer.ok:
        raise Refused(answer)
    return page(request, "batch.html", batch=answer.body)


@requires("submitBatch")
async def get_batch_events(request: web.Request) -> web.StreamResponse:
    """The gateway's progress events, each as the progress table's HTML."""
    batch_id = request.match_info["batch_id"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    gateway, token = request.app[GATEWAY], request[SESSION].token
    async for event, data in gateway.events("GET", f"/v1/batches/{batch_id}/events", token):
        if event == "error":
            html = f'<p class="field-error">{data.get("error", {}).get("message", "refused")}</p>'
            await response.write(sse("done", html))
            break
        await response.write(sse("done" if event == "done" else "progress",
                                 fragment(request, "batch_progress.html", batch=data)))
    await response.write_eof()
    return response


@requires("submitBatch")
async def get_batch_results(request: web.Request) -> web.StreamResponse:
    batch_id, fmt = request.match_info["batch_id"], request.match_info["format"]
    if fmt not in DOWNLOADS:
        raise web.HTTPNotFound()
    chunks = request.app[GATEWAY].download(f"/v1/batches/{batch_id}/results", request[SESSION].token,
                                           {"format": fmt})
    head = await anext(chunks)
    if head.status == 401:
        raise Unauthenticated(head.message)
    if not head.ok:
        raise Refused(head)
    response = web.StreamResponse(headers={
        "Content-Type": head.body["content_type"] or "application/octet-stream",
        "Content-Disposition": head.body["disposition"] or f'attachment; filename="{batch_id}.{fmt}"'})
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def batch_routes():
    return [
        ("GET", "/console/batches", get_batches),
        ("POST", "/console/batches", post_batch),
        ("GET", "/console/batches/{batch_id}", get_batch),
        ("GET", "/console/batches/{batch_id}/events", get_batch_events),
        ("GET", "/console/batches/{batch_id}/results.{format}", get_batch_results),
    ]
