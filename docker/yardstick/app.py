"""proctor's yardstick: a service that does the same work for every request, whatever it asks.

proctor runs it beside a candidate's service and loads both in turns, request by request
(`[cost] calibrate`). Its CPU per request then says how fast the machine is at that moment, and
the candidate's CPU is taken as a multiple of it: one standard millisecond is what one request
here costs. The work is what a small model service does (a web framework's routing, a JSON
answer, a little numpy and a little pure Python), so that a busier or slower machine slows both
alike. Change nothing here without bumping the image's recipe version: calibrated numbers are
comparable only for one and the same yardstick.
"""

import json
import math

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

WEIGHTS = np.linspace(-1.0, 1.0, 64 * 16).reshape(64, 16)
ROWS = np.linspace(0.0, 2.0, 4 * 64).reshape(4, 64)
LOOPS = 300


@app.get("/__yardstick/ready")
def ready():
    return {"ready": True}


@app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def work(request: Request, path: str):
    # The body is read (as any service reads it) but not used: the work is the same for all.
    await request.body()
    scores = np.tanh(ROWS @ WEIGHTS).sum(axis=1)
    s = 0.0
    for i in range(LOOPS):
        s += math.sqrt(i + 1.0) * 1e-3
    out = {"predictions": [{"score": float(1.0 / (1.0 + math.exp(-v - s)))} for v in scores]}
    return Response(json.dumps(out), media_type="application/json")
