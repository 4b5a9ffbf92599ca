"""The contract is the spec (issue 14, item 6): the served OpenAPI document is valid for its own
version, documents every status with the one error shape, and schemathesis, run against the real
server with a fixed seed and a bounded number of cases per operation, finds nothing.

The landed document was invalid (a numeric ``exclusiveMinimum`` under 3.0.2, ``anyOf`` with
``type: null``, ``type: file``), so spec-driven tools could not test ``/predict`` at all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from serving.contract import contract, openapi_30

SEED, EXAMPLES = 14, 25


@pytest.fixture(scope="module")
def document(server: dict) -> dict:
    response = httpx.get(server["url"] + "/docs.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def test_json_schema_2020_constructs_are_rewritten_for_openapi_30() -> None:
    doc = {"openapi": "3.0.2", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"post": {
        "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "required": ["f"], "properties": {
            "f": {"type": "file"}, "g": {"type": "string", "contentMediaType": "application/octet-stream"},
            "n": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}], "default": None},
            "c": {"const": "a"}, "e": {"type": "string", "examples": ["x"]}}}}}},
        "responses": {"200": {"description": "ok"}}}}}}
    with pytest.raises(OpenAPIValidationError):  # the control: the document as BentoML writes it is refused
        validate(doc)
    fixed = contract(doc)
    validate(fixed)
    props = fixed["paths"]["/x"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert props["f"] == {"type": "string", "format": "binary"} and props["g"]["format"] == "binary"
    assert props["n"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True, "nullable": True, "default": None}
    assert props["c"] == {"enum": ["a"]} and props["e"]["example"] == "x"
    assert openapi_30({"type": ["string", "null"]}) == {"type": "string", "nullable": True}


def test_the_served_document_is_valid_openapi(document: dict) -> None:
    assert document["openapi"].startswith("3.0")
    validate(document)
    text = json.dumps(document)
    for construct in ('"contentMediaType"', '"type": "null"', '"type": "file"', '"const"'):
        assert construct not in text, construct


def test_every_operation_documents_its_statuses_with_the_one_error_shape(document: dict) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    assert document["components"]["schemas"]["Error"]["required"] == ["error", "detail"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            wanted = {"400"} | ({"401", "404", "500", "503"} if not path.endswith(("healthz", "livez", "readyz")) else set())
            if method == "post":
                wanted |= {"403", "413", "415", "422"}
            assert wanted <= set(responses), (method, path, sorted(responses))
            for status in wanted:
                assert responses[status]["content"]["application/json"]["schema"] == error, (path, status)
    predict = document["paths"]["/predict"]["post"]
    assert predict["requestBody"]["required"] is True
    assert "Retry-After" in predict["responses"]["503"]["headers"]
    cost = predict["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["cost_price"]
    assert cost["minimum"] == 0.01 and cost["maximum"] == 1_000_000


def test_the_batch_routes_and_metrics_are_documented_as_they_answer(document: dict) -> None:
    """The page's job routes and BentoML's /metrics, which the fuzzing run once left out: the
    multipart upload, the job it answers, the downloads' media types, 409 before a job is done."""
    paths, error = document["paths"], {"$ref": "#/components/schemas/Error"}
    upload = paths["/batch"]["post"]
    schema = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["required"] == ["candidates"] and schema["properties"]["candidates"]["format"] == "binary"
    assert schema["properties"]["picture_files"]["items"]["format"] == "binary"
    job = upload["responses"]["202"]["content"]["application/json"]["schema"]
    assert job["required"] == ["id", "status", "done", "total"] and "path" not in json.dumps(job).lower()
    for path in ("/batch/{job_id}", "/batch/{job_id}/cancel"):
        operation = paths[path].get("get") or paths[path]["post"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == job
    for path in ("/batch/{job_id}/rows", "/batch/{job_id}/scores.{kind}", "/batch/{job_id}/pictures/{row}.jpg"):
        assert paths[path]["get"]["responses"]["409"]["content"]["application/json"]["schema"] == error
    downloads = paths["/batch/{job_id}/scores.{kind}"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} <= set(downloads)
    assert set(paths["/batch/{job_id}/pictures/{row}.jpg"]["get"]["responses"]["200"]["content"]) >= {"image/jpeg"}
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def finished_job(server: dict) -> tuple[str, str]:
    """A small web batch job, run to its end: (its creator's cookie, its id)."""
    import time

    import pandas as pd

    sample = server["sample"]
    frame = pd.read_csv(sample / "candidates.csv", dtype=str, keep_default_na=False).head(2)
    files = [("candidates", ("c.csv", frame.to_csv(index=False).encode(), "text/csv")),
             *[("picture_files", (Path(p).name, (sample / p).read_bytes(), "image/png")) for p in frame["image"]]]
    with httpx.Client(base_url=server["url"], timeout=120) as browser:
        job = browser.post("/batch", files=files).json()
        deadline = time.monotonic() + 600
        while (job := browser.get(f"/batch/{job['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "done", job
        return browser.cookies["trialcast_client"], job["id"]


def test_schemathesis_finds_nothing(server: dict, tmp_path: Path) -> None:
    """Schemathesis's default checks, on every operation (the batch upload, its job routes and
    /metrics included), positive and negative data. A schema-valid request may still be refused
    with 422 when a rule spans fields (list price above cost price), needs the model (a known
    category, a past SKU id) or the file's content (a table with the required columns and its
    pictures), with 404 for an unknown past SKU's picture or a job that is not the caller's, and
    with 409 for a job not finished: the contract says so. On POST /predict (multipart/form-data) the
    negative-data check is off: a form part carries text, so a type mutation the fuzzer makes
    (``true`` for a description, an empty array for a date) arrives as valid text or as an
    absent field, and accepting it is right. On POST /batch a schema-valid file may also be of a
    kind the service does not read (415: the table's format is its file name's and content's, which
    a schema cannot say). The fuzzer calls as the creator of a finished job (its cookie, its id as
    the job routes' ``job_id``), so the job routes are reached, not only their 404."""
    cookie, job_id = finished_job(server)
    config = tmp_path / "schemathesis.toml"
    config.write_text('[checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "404", "409", "422"]\n\n'
                      f'[headers]\nCookie = "trialcast_client={cookie}"\n\n[parameters]\njob_id = "{job_id}"\n\n'
                      '[[operations]]\ninclude-path = "/predict"\ninclude-method = "POST"\n'
                      'checks.negative_data_rejection.enabled = false\n\n'
                      '[[operations]]\ninclude-path = "/batch"\ninclude-method = "POST"\n'
                      'checks.positive_data_acceptance.expected-statuses = ["2xx", "413", "415", "422"]\n')
    st = Path(sys.executable).with_name("st")
    done = subprocess.run(
        [str(st), "--config-file", str(config), "--no-color", "run", server["url"] + "/docs.json",
         "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--workers", "1",
         "--phases", "examples,coverage,fuzzing",
         "--generation-database", "none", "--request-timeout", "120"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1500, check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and "failed" not in done.stdout.split("SUMMARY")[-1], done.stdout[-3000:]
