"""Typed configuration: model presets and training hyperparameters.

Both are plain dataclasses so they round-trip through `config.json` and the
export manifest without a custom format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

IMAGE_SIZE = 32  # pixels, height and width of every generated and training image


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one generator/discriminator pair."""

    preset: str
    kind: str  # "resnet" (class-conditional SNGAN/BigGAN family) or "dense" (baseline)
    latent_dim: int  # length of the latent vector z
    g_channels: int  # feature maps in every generator residual block
    d_channels: int  # feature maps in every discriminator residual block
    num_classes: int = len(CIFAR10_CLASSES)

    @property
    def conditional(self) -> bool:
        return self.kind == "resnet"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# Presets by width. `tiny` keeps a CPU train step well under a second for tests,
# `small` is sized for a 2-core CPU, `base` is the usual SNGAN CIFAR-10 width
# (256 channels in G, 128 in D) for a GPU. `dense` reproduces the original
# fully connected, unconditional GAN as a baseline.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig("tiny", "resnet", latent_dim=32, g_channels=16, d_channels=16),
    "small": ModelConfig("small", "resnet", latent_dim=128, g_channels=64, d_channels=64),
    "base": ModelConfig("base", "resnet", latent_dim=128, g_channels=256, d_channels=128),
    "dense": ModelConfig("dense", "dense", latent_dim=100, g_channels=0, d_channels=0),
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; stored as the run's `config.json`."""

    model: ModelConfig
    data: str  # archive, folder or image-folder path the run was trained on
    class_names: tuple[str, ...] = CIFAR10_CLASSES
    batch_size: int = 64  # images per step, summed over all replicas
    total_kimg: float = 2000.0  # thousands of real images shown to D before stopping
    lr_g: float = 1e-4  # Adam learning rate of G (two time-scale update rule)
    lr_d: float = 4e-4  # Adam learning rate of D
    beta_1: float = 0.0
    beta_2: float = 0.9
    d_steps: int = 1  # D updates per G update
    ema_kimg: float = 10.0  # half-life of the EMA generator's weights, in kimg
    ema_rampup: float = 0.05  # half-life grows as this fraction of images shown, early on
    diffaugment: str = "color,translation,cutout"  # DiffAugment policy, "" for none
    seed: int = 0
    tick_kimg: float = 1.0  # one log line and status update per tick
    snapshot_kimg: float = 10.0  # checkpoint, export and sample grid interval
    keep_checkpoints: int = 3
    eval_kimg: float = 0.0  # evaluate the export every this many kimg and keep best.json; 0 turns it off
    eval_images: int = 5000  # generated images per evaluation during training
    mixed_precision: bool = False  # float16 compute, turned on for GPUs by the CLI
    init_generator: str = ""  # export whose weights G, the EMA generator and (if it has them) D start from; "" for random ones
    g_warmup_kimg: float = 0.0  # kimg at the start during which only D trains (lets a new D catch up with a warm-started G)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["model"] = ModelConfig.from_dict(values["model"])
        values["class_names"] = tuple(values.get("class_names", CIFAR10_CLASSES))
        return cls(**values)

    def incompatible_with(self, other: "TrainConfig") -> list[str]:
        """List the fields that make resuming `other`'s checkpoint as `self` impossible."""
        problems = []
        if self.model != other.model:
            problems.append(f"model {other.model.preset!r} != {self.model.preset!r}")
        if tuple(self.class_names) != tuple(other.class_names):
            problems.append("class names differ")
        if self.batch_size != other.batch_size:
            problems.append(f"batch size {other.batch_size} != {self.batch_size}")
        if self.seed != other.seed:
            problems.append(f"seed {other.seed} != {self.seed}")
        return problems

