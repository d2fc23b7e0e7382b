"""The contract between the coordinator and a worker: what to measure (CellPayload) and
what came back (CellResult), JSON in and out, versioned.

Every caller builds payloads here (the sweep's coordinator, the Python API, `compare
--confirm`, NAS latency measurements, the benchmark scripts), so a field is added in one
place. Plain dataclasses: this module imports nothing beyond the standard library, so a
device that cannot run Ray or torch still reads it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

CELL_VERSION = 2
BATCH_AXIS = "batch"  # the dynamic axis measure.batch_sizes sweeps, wherever it sits


@dataclass(frozen=True)
class InputSpec:
    """One named input: dtype and dims, each an int (fixed) or a name (a dynamic axis:
    `batch`, or one swept by measure.shapes such as `seq`)."""
    name: str
    dtype: str = "float32"
    dims: tuple = (BATCH_AXIS,)
    low: float | None = None      # synthetic values: ints drawn in [low, high), floats
    high: float | None = None     #   uniform in [low, high) (normal when both are None)
    fill: float | None = None     # synthetic values: this constant (attention masks)

    @property
    def batch_axis(self) -> int | None:
        """Where the batch is, or None for an input fed as is (a sample rate)."""
        return self.dims.index(BATCH_AXIS) if BATCH_AXIS in self.dims else None

    @property
    def axes(self) -> tuple[str, ...]:
        """The named dynamic axes other than the batch."""
        return tuple(d for d in self.dims if isinstance(d, str) and d != BATCH_AXIS)

    def shape(self, batch: int, shape: dict[str, int]) -> tuple[int, ...]:
        """Concrete dims for a batch size and values of the named axes."""
        out = []
        for dim in self.dims:
            if dim == BATCH_AXIS:
                out.append(batch)
            elif isinstance(dim, str):
                if dim not in shape:
                    raise ValueError(f"input {self.name!r}: no value for axis {dim!r}")
                out.append(int(shape[dim]))
            else:
                out.append(int(dim))
        return tuple(out)

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None} | {
            "dims": list(self.dims)}

    @classmethod
    def from_json(cls, data: dict) -> "InputSpec":
        return cls(**(data | {"dims": tuple(data.get("dims", (BATCH_AXIS,)))}))


def specs_for(inputs) -> tuple:
    """Input specs from specs, or from a (C, H, W) shape: one float input named 'input'
    with the batch first (the `input_shape:` shorthand)."""
    if inputs is None:
        return ()
    if all(isinstance(d, int) for d in inputs):
        return (InputSpec("input", "float32", (BATCH_AXIS, *inputs)),)
    return tuple(inputs)


def shape_label(shape: dict[str, int]) -> str:
    """How a shape is stored and shown: 'seq=128', 'h=224,w=224'; '' for none."""
    return ",".join(f"{k}={v}" for k, v in sorted(shape.items()))


@dataclass(frozen=True)
class FileRef:
    """A file the worker loads, checked against its sha256 first."""
    path: str
    sha256: str
    companions: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "companions": list(self.companions)}

    @classmethod
    def from_json(cls, data: dict) -> "FileRef":
        return cls(data["path"], data["sha256"], tuple(data.get("companions") or ()))


@dataclass(frozen=True)
class CellPayload:
    cell_id: str
    device: str
    runtime: str
    precision: str
    artifact: FileRef
    eval_pack: FileRef
    measure: dict                   # the matrix's measure section (MeasureSpec as JSON)
    runtime_options: dict = field(default_factory=dict)
    int8_full_range: bool = False   # full-range int8 weights: may saturate without VNNI
    version: int = CELL_VERSION

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["artifact"] = self.artifact.to_json()
        data["eval_pack"] = self.eval_pack.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict) -> "CellPayload":
        version = data.get("version", 1)
        if version != CELL_VERSION:
            raise ValueError(f"cell payload version {version}; this worker reads "
                             f"{CELL_VERSION} (agents and coordinator are different versions)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"cell payload has unknown fields {sorted(unknown)}")
        return cls(**(data | {"artifact": FileRef.from_json(data["artifact"]),
                              "eval_pack": FileRef.from_json(data["eval_pack"])}))

    @classmethod
    def from_manifest(cls, cell_id: str, device: str, manifest: dict, measure: dict,
                      **extra) -> "CellPayload":
        """A payload for a built variant (its build manifest, with its eval pack)."""
        pack = manifest["eval_pack"]
        return cls(cell_id=cell_id, device=device, runtime=manifest["runtime"],
                   precision=manifest["precision"],
                   artifact=FileRef(manifest["artifact_path"], manifest["sha256"],
                                    tuple(manifest.get("companions") or ())),
                   eval_pack=FileRef(pack["path"], pack["sha256"]), measure=dict(measure),
                   int8_full_range=full_range_int8(manifest.get("method_config") or []),
                   **extra)

    def with_measure(self, **changes) -> "CellPayload":
        return dataclasses.replace(self, measure=self.measure | changes)

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()))


def full_range_int8(method_config: list[dict]) -> bool:
    """A step of a stored method config quantizes weights to the full int8 range."""
    return any((step.get("scheme") or {}).get("reduce_range") is False
               for step in method_config)


@dataclass
class CellResult:
    """What a worker (or the launcher around it) reports for one cell. `measurements` has
    one row per (shape, batch size): the results schema's measurement columns, the raw
    samples (`samples_ms`) and the quality metrics (`metrics`)."""
    status: str                     # ok | failed | timeout
    error: str | None = None
    traceback: str | None = None
    device: dict = field(default_factory=dict)     # agents.devices.fingerprint
    runtime: dict = field(default_factory=dict)    # the session's info
    measurements: list[dict] = field(default_factory=list)
    load_ms: float | None = None
    niceness: int | None = None
    artifact_size_bytes: int | None = None
    wall_s: float | None = None
    peak_rss_sampled_mb: float | None = None
    processes: int = 1
    agent: dict = field(default_factory=dict)      # the cluster node that measured it
    phases: dict = field(default_factory=dict)     # seconds per phase (agents/phases.py)
    version: int = CELL_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "CellResult":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def failed(cls, error: str, status: str = "failed", **extra) -> "CellResult":
        return cls(status=status, error=error, **extra)
