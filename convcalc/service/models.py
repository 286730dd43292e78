"""Pydantic models of the service's JSON answers, for the OpenAPI document only.

The answers themselves are the dicts convcalc already produces (:meth:`Report.to_dict`,
:meth:`VerificationResult.to_dict`, :meth:`convcalc.catalog.Summary.to_dict`), sent as they
are, so the service and the CLI cannot drift apart; these models describe them, and the
schemathesis test checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from convcalc.catalog import Summary
from pydantic import BaseModel, ConfigDict, Field

Number = Union[int, float]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProblemItem(_Open):
    """One diagnostic, as ``convcalc check --format json`` lists it (plus details such
    as ``axes`` for some analysis problems)."""

    layer: Optional[str] = Field(description="the layer's name, when the problem is in one")
    severity: Literal["error", "warning", "note"]
    message: str
    field: Optional[str] = Field(None, description="where in the spec: layers[0].stride")
    line: Optional[int] = Field(None, description="the line of that field in the body")


class Problem(_Open):
    """An error answer (RFC 9457, ``application/problem+json``)."""

    type: str = Field(description="a URI naming the kind of problem (see docs/service.rst)")
    title: str
    status: int
    detail: str
    problems: list[ProblemItem] = Field(
        default_factory=list,
        description="the same diagnostics as the CLI's, with line and field")


class ReceptiveFieldOut(BaseModel):
    size: list[int]
    jump: list[Number]
    padding: list[Number]


class LayerOut(BaseModel):
    name: str
    type: str
    input_shape: Optional[list[int]]
    output_shape: Optional[list[int]]
    params: Optional[int]
    trainable_params: Optional[int]
    buffers: Optional[int]
    macs: Optional[int]
    activations: Optional[int] = Field(description="values in one example's output")
    activation_bytes: Optional[int] = Field(
        description="the output's bytes at `memory`'s batch and dtype")
    receptive_field: Optional[ReceptiveFieldOut]
    line: Optional[int]
    inputs: list[str]
    group: list[str]


class GroupOut(BaseModel):
    name: str
    block: str
    depth: int
    layers: list[str]
    output_shape: Optional[list[int]]
    params: int
    trainable_params: int
    buffers: int
    macs: int


class TrainingMemoryOut(BaseModel):
    """A training step's memory in exact bytes (:func:`convcalc.footprint`)."""

    batch: int
    dtype: str
    optimizer: str
    bytes_per_value: int
    input_bytes: Optional[int] = Field(description="null when the input's sizes are open")
    forward_bytes: int = Field(description="every layer's output")
    backward_bytes: int = Field(description="a gradient for every output")
    params_bytes: int
    buffers_bytes: int
    gradients_bytes: int = Field(description="one per trainable parameter")
    optimizer_state_bytes: int = Field(
        description="sgd none, momentum one value per trainable parameter, adam two")
    total_bytes: Optional[int] = Field(description="null when the input's sizes are open")


class ReportOut(BaseModel):
    """Exactly what ``convcalc check --format json`` prints."""

    ok: bool = Field(description="no error (warnings allowed)")
    name: Optional[str]
    input_shape: list[int]
    output_shape: Optional[list[int]]
    layers: list[LayerOut]
    total_params: int
    trainable_params: int
    total_buffers: int
    total_macs: int
    total_activations: int
    problems: list[ProblemItem]
    groups: list[GroupOut]
    memory: TrainingMemoryOut


class LayerCheckOut(BaseModel):
    name: str
    type: str
    ok: bool
    predicted_shape: Optional[list[int]]
    observed_shape: Optional[list[int]]
    shape_ok: bool
    predicted_params: Optional[int]
    observed_params: Optional[int]
    predicted_buffers: Optional[int]
    observed_buffers: Optional[int]
    params_ok: bool
    gradients_ok: bool
    gradient_problems: list[str]
    gradcheck_error: Optional[float]
    gradcheck_kinks: int
    gradcheck_ok: bool


class EndToEndOut(BaseModel):
    """One whole-network check of the directional gradient check."""

    tensor: str = Field(description="`input` (the network's input) or `parameters` (all "
                                    "of them along one direction)")
    entries: int
    error: float
    kinks: int
    ok: bool


class MemoryOut(BaseModel):
    batch: int
    dtype: str
    total_bytes: int
    fixed_bytes: int
    per_example_bytes: int
    parts: dict[str, int]
    limit_bytes: int
    runtime_bytes: int = Field(description="the interpreter's share of the estimate")
    measured_peak_bytes: Optional[int] = Field(
        description="the engine run's measured peak (tracemalloc: arrays and Python "
                    "objects, without the interpreter), to compare with total_bytes − "
                    "runtime_bytes")


class VerificationOut(BaseModel):
    """Exactly what ``convcalc verify --format json`` prints."""

    name: Optional[str]
    file: Optional[str]
    ok: bool
    batch: int
    seed: int
    dtype: str
    gradcheck: bool
    gradcheck_tolerance: Optional[float]
    gradcheck_method: Optional[str] = Field(
        description="`directions` or `entries` when the gradients were checked")
    gradcheck_end_to_end: Optional[list[EndToEndOut]] = Field(
        description="the directional check's whole-network checks (null otherwise)")
    engine_error: Optional[str]
    input_gradient_ok: bool
    memory: MemoryOut
    seconds: dict[str, float]
    layers: list[LayerCheckOut]


# One model's totals, as ``convcalc zoo --format json`` lists them: the zoo's own type.
ZooSummaryOut = Summary


class ZooModelOut(BaseModel):
    name: str
    title: str
    header: str = Field(description="the file's header comment: source and published totals")
    text: str = Field(description="the spec file as written (YAML)")
    spec: dict[str, Any] = Field(description="the file parsed (blocks not expanded)")
    summary: ZooSummaryOut


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    limits: dict[str, Number]
    verify: dict[str, Number]
