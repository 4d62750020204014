"""Command handlers with a stand-in generation service: validation, limits, admin checks, status."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import socket
import subprocess
import sys
import threading

import pytest

from bot.handlers import MAX_SEED, VARIATION_STRENGTH, CommandHandlers
from bot.limits import GenerationQueue
from bot.messages import Request
from bot.status import check_liveness, format_duration, loss_history
from gan.images import render_grid
from gan.service import GenerationError
from test_bot_fakes import StandInService, served_model, settings

PNG = b"\x89PNG\r\n\x1a\n"


class DeferRecorder:
    def __init__(self):
        self.calls: list[bool] = []

    async def __call__(self, ephemeral: bool) -> None:
        self.calls.append(ephemeral)


def make_handlers(service=None, **setting_changes) -> CommandHandlers:
    config = settings(**setting_changes)
    queue = GenerationQueue(config.queue_size, config.max_per_user, config.cooldown_seconds)
    return CommandHandlers(service or StandInService(), queue, config)


def request(command: str = "generate", user_id: int = 42, **options) -> Request:
    return Request(command=command, user_id=user_id, user_name=f"user{user_id}", options=options)


# /generate.


async def test_generate_returns_grid():
    reply = await make_handlers().handle(request(**{"class": "cat", "count": 4, "seed": 7}), DeferRecorder())
    assert reply.files[0].data.startswith(PNG)


async def test_generate_text_names_class_seed_step():
    reply = await make_handlers().handle(request(**{"class": "cat", "count": 4, "seed": 7}), DeferRecorder())
    assert reply.text == "4 × **cat**, seed 7, model step 1200."


async def test_generate_random_lists_classes():
    reply = await make_handlers().handle(request(count=3, seed=7), DeferRecorder())
    assert reply.text.startswith("3 random: ")


async def test_generate_is_public():
    reply = await make_handlers().handle(request(seed=7), DeferRecorder())
    assert reply.ephemeral is False


async def test_generate_defers_once_publicly():
    defer = DeferRecorder()
    await make_handlers().handle(request(seed=7), defer)
    assert defer.calls == [False]


async def test_generate_passes_options_to_service():
    service = StandInService()
    await make_handlers(service).handle(request(**{"class": "Cat", "count": "2", "seed": "7"}), DeferRecorder())
    assert service.calls[0] == {"class_name": 3, "count": 2, "seed": 7, "variation": 0.0, "variation_seed": None}


async def test_generate_draws_seed_in_discord_range():
    service = StandInService()
    await make_handlers(service).handle(request(), DeferRecorder())
    assert 0 <= service.calls[0]["seed"] <= MAX_SEED


async def test_generate_offers_both_buttons():
    reply = await make_handlers().handle(request(seed=7), DeferRecorder())
    assert [button.action for button in reply.buttons] == ["reroll", "variations"]


async def test_generate_buttons_carry_requester():
    reply = await make_handlers().handle(request(user_id=77, seed=7), DeferRecorder())
    assert reply.buttons[0].owner_id == 77


@pytest.mark.parametrize(
    "options, message",
    [
        ({"count": 0}, "count must be a whole number from 1 to 16, got '0'."),
        ({"count": 17}, "count must be a whole number from 1 to 16, got '17'."),
        ({"count": "four"}, "count must be a whole number from 1 to 16, got 'four'."),
        ({"count": True}, "count must be a whole number from 1 to 16, got 'True'."),
        ({"seed": -1}, f"seed must be a whole number from 0 to {MAX_SEED}, got '-1'."),
        ({"seed": MAX_SEED + 1}, f"seed must be a whole number from 0 to {MAX_SEED}, got '{MAX_SEED + 1}'."),
        ({"seed": "1.5"}, f"seed must be a whole number from 0 to {MAX_SEED}, got '1.5'."),
    ],
)
async def test_generate_invalid_option(options, message):
    defer = DeferRecorder()
    reply = await make_handlers().handle(request(**options), defer)
    assert reply.text == message
    assert reply.ephemeral is True
    assert defer.calls == []


@pytest.mark.parametrize("name, low, high", [("count", 1, 16), ("seed", 0, MAX_SEED)])
async def test_generate_overlong_number_rejected(name, low, high):
    defer = DeferRecorder()
    reply = await make_handlers().handle(request(**{name: "7" * 5000}), defer)
    shown = "7" * 40
    assert reply.text == f"{name} must be a whole number from {low} to {high}, got '{shown}…' (5000 characters)."
    assert reply.ephemeral is True
    assert defer.calls == []


async def test_generate_number_text_at_limit():
    service = StandInService()
    await make_handlers(service).handle(request(seed="0" * 31 + "7"), DeferRecorder())
    assert service.calls[0]["seed"] == 7


async def test_generate_overlong_class_rejected():
    reply = await make_handlers().handle(request(**{"class": "3" * 5000}), DeferRecorder())
    assert reply.text == f"class must be a class name or index of at most 256 characters, got '{'3' * 40}…' (5000 characters)."
    assert reply.ephemeral is True


async def test_generate_unknown_class_suggests():
    reply = await make_handlers().handle(request(**{"class": "kat"}), DeferRecorder())
    assert "Did you mean 'cat'?" in reply.text
    assert reply.ephemeral is True


async def test_generate_no_model_is_ephemeral():
    service = StandInService()
    service.served = None
    defer = DeferRecorder()
    reply = await make_handlers(service).handle(request(**{"class": 3}), defer)
    assert reply.ephemeral is True
    assert defer.calls == []


async def test_generate_service_error_after_defer():
    service = StandInService(fail_with=GenerationError("Count 99 is out of range 1..64."))
    reply = await make_handlers(service).handle(request(seed=1), DeferRecorder())
    assert reply.text == "Count 99 is out of range 1..64."
    assert reply.ephemeral is False  # the public defer already went out


async def test_generate_unexpected_error_propagates():
    service = StandInService(fail_with=RuntimeError("TensorFlow crashed"))
    with pytest.raises(RuntimeError, match="TensorFlow crashed"):
        await make_handlers(service).handle(request(seed=1), DeferRecorder())


async def test_generate_shrinks_grid_to_fit_limit():
    full_size = render_grid(StandInService().generate(count=16, seed=3).images, size=128)
    limit = len(full_size) - 1
    reply = await make_handlers().handle(
        Request("generate", 42, "user42", {"count": 16, "seed": 3}, attachment_limit=limit), DeferRecorder()
    )
    assert 0 < len(reply.files[0].data) <= limit


async def test_generate_grid_too_large_says_so():
    reply = await make_handlers().handle(
        Request("generate", 42, "user42", {"count": 16, "seed": 3}, attachment_limit=100), DeferRecorder()
    )
    assert reply.files == ()
    assert "Ask for fewer images" in reply.text


async def test_generate_refused_while_shutting_down():
    handlers = make_handlers()
    handlers.closing = True
    reply = await handlers.handle(request(seed=1), DeferRecorder())
    assert reply.text == "The bot is shutting down. Try again in a minute."
    assert reply.ephemeral is True


# Limits.


async def test_generate_per_user_limit():
    service = StandInService()
    service.gate = threading.Event()
    handlers = make_handlers(service)
    first = asyncio.create_task(handlers.handle(request(seed=1), DeferRecorder()))
    await asyncio.to_thread(service.started.wait, 5)
    defer = DeferRecorder()
    reply = await handlers.handle(request(seed=2), defer)
    service.gate.set()
    await asyncio.wait_for(first, 5)
    assert reply.text == "Your previous request is still being generated. Wait for it to finish."
    assert defer.calls == []


async def test_generate_queue_full():
    service = StandInService()
    service.gate = threading.Event()
    handlers = make_handlers(service, queue_size=1)
    running = asyncio.create_task(handlers.handle(request(user_id=1, seed=1), DeferRecorder()))
    await asyncio.to_thread(service.started.wait, 5)
    waiting = asyncio.create_task(handlers.handle(request(user_id=2, seed=2), DeferRecorder()))
    await asyncio.sleep(0.05)
    reply = await handlers.handle(request(user_id=3, seed=3), DeferRecorder())
    service.gate.set()
    await asyncio.wait_for(asyncio.gather(running, waiting), 5)
    assert reply.text == "The generation queue is full (1 requests waiting). Try again in a few seconds."
    assert reply.ephemeral is True


async def test_generate_cooldown():
    handlers = make_handlers(cooldown_seconds=30)
    await handlers.handle(request(seed=1), DeferRecorder())
    reply = await handlers.handle(request(seed=2), DeferRecorder())
    assert reply.text == "You can generate again in 30 s."
    assert reply.ephemeral is True


async def test_event_loop_runs_during_generation():
    service = StandInService()
    service.gate = threading.Event()
    handlers = make_handlers(service)
    task = asyncio.create_task(handlers.handle(request(seed=1), DeferRecorder()))
    await asyncio.to_thread(service.started.wait, 5)
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        ticks += 1
    service.gate.set()
    await asyncio.wait_for(task, 5)
    assert ticks == 5


# Buttons.


def button_request(action: str, user_id: int = 42, owner: int = 42, seed: int = 7, class_index=3) -> Request:
    return request(action, user_id=user_id, **{"class": class_index, "count": 4, "seed": seed, "owner": owner})


async def test_reroll_draws_new_seed():
    service = StandInService()
    await make_handlers(service).handle(button_request("reroll"), DeferRecorder())
    assert service.calls[0]["seed"] != 7


async def test_reroll_keeps_class_and_count():
    service = StandInService()
    await make_handlers(service).handle(button_request("reroll"), DeferRecorder())
    assert (service.calls[0]["class_name"], service.calls[0]["count"]) == (3, 4)


async def test_variations_keep_seed_and_perturb():
    service = StandInService()
    await make_handlers(service).handle(button_request("variations"), DeferRecorder())
    call = service.calls[0]
    assert (call["seed"], call["variation"]) == (7, VARIATION_STRENGTH)
    assert call["variation_seed"] is not None


async def test_variations_text_names_variation_seed():
    reply = await make_handlers().handle(button_request("variations"), DeferRecorder())
    assert reply.text.startswith("Variations for user42: 4 × **cat**, seed 7, variation seed ")


async def test_button_open_to_others_by_default():
    reply = await make_handlers().handle(button_request("reroll", user_id=5, owner=42), DeferRecorder())
    assert reply.files != ()


async def test_button_requester_only_refuses_others():
    handlers = make_handlers(buttons_requester_only=True)
    defer = DeferRecorder()
    reply = await handlers.handle(button_request("reroll", user_id=5, owner=42), defer)
    assert reply.text.startswith("Only the person who asked for these images")
    assert reply.ephemeral is True
    assert defer.calls == []


async def test_button_requester_only_allows_owner():
    handlers = make_handlers(buttons_requester_only=True)
    reply = await handlers.handle(button_request("reroll", user_id=42, owner=42), DeferRecorder())
    assert reply.files != ()


async def test_button_with_stale_class():
    defer = DeferRecorder()
    reply = await make_handlers().handle(button_request("reroll", class_index=99), defer)
    assert reply.text.startswith("This button no longer works: Class index 99 is out of range")
    assert reply.ephemeral is True
    assert defer.calls == []


# /model.


async def test_model_reports_step_and_metrics():
    reply = await make_handlers().handle(request("model"), DeferRecorder())
    assert "step 1200 (76.8 kimg)" in reply.text
    assert "Metrics: fid 31.2" in reply.text


async def test_model_hides_full_path():
    reply = await make_handlers().handle(request("model"), DeferRecorder())
    assert "/srv/runs" not in reply.text


async def test_model_shows_dataset_name_only():
    service = StandInService(served_model(dataset="/srv/data/cifar-10-python.tar.gz"))
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert "Trained on: cifar-10-python.tar.gz (10 classes" in reply.text
    assert "/srv/data" not in reply.text


EVALUATED = {
    "fd_cifar": 41.2345,
    "kid_cifar": 0.03112,
    "kid_cifar_std": 0.00213,
    "class_match": 0.62,
    "classifier_score": 5.1234,
    "classifier_score_std": 0.0812,
    "classifier_test_accuracy": 0.93,
    "num_images": 10000,
    "feature_network": "cifar",
    "step": 1200,
    "kimg": 76.8,
    "seconds": 41.5,
    "floor": {"fd_cifar": 3.104, "kid_cifar": 0.0001, "class_match": 0.93, "num_images": 10000},
}


async def test_model_metrics_readable():
    service = StandInService(served_model(metrics=EVALUATED))
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert (
        "Metrics (10000 images): fd_cifar 41.2 (real-data floor 3.1), kid_cifar 0.0311 ± 0.00213, "
        "class match 62.0%, classifier score 5.12 ± 0.0812\n" in reply.text
    )


async def test_model_metrics_hide_bookkeeping():
    service = StandInService(served_model(metrics=EVALUATED))
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    metrics_line = next(line for line in reply.text.splitlines() if line.startswith("Metrics"))
    for hidden in ("seconds", "41.5", "feature_network", "step", "kimg", "classifier_test_accuracy", "{"):
        assert hidden not in metrics_line


async def test_model_metrics_skip_missing_keys():
    service = StandInService(served_model(metrics={"fd_cifar": 250.4, "kid_cifar": float("nan")}))
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert "Metrics: fd_cifar 250\n" in reply.text


async def test_model_metrics_only_unknown_keys():
    service = StandInService(served_model(metrics={"seconds": 12.0, "step": 1200}))
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert "Metrics: not evaluated" in reply.text


async def test_model_reports_reload_error():
    service = StandInService()
    service.last_reload_error = "export step 1300 rejected: sha256 mismatch"
    service.last_reload_error_at = dt.datetime.now(dt.timezone.utc)
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert re.search(r"Last reload error \(\d s ago\): export step 1300 rejected: sha256 mismatch", reply.text)


async def test_model_without_model():
    service = StandInService()
    service.served = None
    reply = await make_handlers(service).handle(request("model"), DeferRecorder())
    assert reply.text.startswith("No model is being served.")


# /train status: who may use it.


def status_request(user_id: int = 42, roles=(), manage_guild: bool = False) -> Request:
    return Request("train status", user_id, "someone", {}, role_ids=frozenset(roles), manage_guild=manage_guild)


@pytest.mark.parametrize(
    "status_request_args",
    [{"manage_guild": True}, {"roles": (555,)}, {"user_id": 777}],
    ids=["manage-guild", "admin-role", "admin-user"],
)
def test_admin_allowed(status_request_args):
    handlers = make_handlers(admin_role_ids=frozenset({555}), admin_user_ids=frozenset({777}))
    assert handlers.is_admin(status_request(**status_request_args)) is True


def test_admin_refused_without_grant():
    handlers = make_handlers(admin_role_ids=frozenset({555}), admin_user_ids=frozenset({777}))
    assert handlers.is_admin(status_request(user_id=1, roles=(556,))) is False


async def test_train_status_refusal_is_ephemeral():
    defer = DeferRecorder()
    reply = await make_handlers().handle(status_request(), defer)
    assert reply.text.startswith("/train status is for server managers")
    assert reply.ephemeral is True
    assert defer.calls == []


async def test_train_status_without_run_dir():
    reply = await make_handlers().handle(status_request(manage_guild=True), DeferRecorder())
    assert "gan-train --data PATH --preset small --out runs/NAME" in reply.text
    assert reply.ephemeral is True


async def test_train_status_missing_run_dir(tmp_path):
    handlers = make_handlers(run_dir=tmp_path / "absent")
    reply = await handlers.handle(status_request(manage_guild=True), DeferRecorder())
    assert "does not exist" in reply.text
    assert "GAN_RUN_DIR" in reply.text


async def test_train_status_missing_status_file(tmp_path):
    handlers = make_handlers(run_dir=tmp_path)
    reply = await handlers.handle(status_request(manage_guild=True), DeferRecorder())
    assert "status.json does not exist yet" in reply.text
    assert reply.ephemeral is True


# /train status: what it shows.


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def write_status(run_dir, **changes) -> dict:
    now = dt.datetime.now(dt.timezone.utc)
    (run_dir / "samples").mkdir(exist_ok=True)
    sample = run_dir / "samples" / "fakes000070.png"
    sample.write_bytes(render_grid(StandInService().generate(count=4, seed=1).images, size=32))
    status = {
        "state": "running",
        "pid": 1,
        "host": "elsewhere.example",
        "preset": "small",
        "run_dir": str(run_dir),
        "started": iso(now - dt.timedelta(hours=2)),
        "updated": iso(now - dt.timedelta(seconds=20)),
        "step": 1200,
        "kimg": 76.8,
        "total_kimg": 2000.0,
        "img_per_sec": 85.1,
        "sec_per_kimg": 11.7,
        "eta_seconds": 23000.0,
        "losses": {"loss_d": 1.1, "loss_g": 0.7},
        "loss_history": [{"kimg": k, "loss_d": 1.5 - k / 100, "loss_g": 0.5 + k / 100} for k in range(1, 77, 5)],
        "last_checkpoint": {"path": "ckpt-7", "kimg": 70.0, "time": iso(now - dt.timedelta(minutes=3))},
        "last_export": {"path": "exports/generator-000070", "kimg": 70.0, "step": 1100, "time": iso(now)},
        "last_sample": {"path": str(sample), "kimg": 70.0},
        "error": None,
    }
    status.update(changes)
    (run_dir / "status.json").write_text(json.dumps(status))
    return status


async def train_status(run_dir, **setting_changes):
    handlers = make_handlers(run_dir=run_dir, **setting_changes)
    defer = DeferRecorder()
    reply = await handlers.handle(status_request(manage_guild=True), defer)
    return reply, defer


async def test_train_status_shows_progress(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert "Progress: 76.8 of 2000 kimg (3.8 %), step 1200" in reply.text


async def test_train_status_shows_speed_and_eta(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert "Speed: 85.1 img/s, about 6 h 23 min to go" in reply.text


async def test_train_status_shows_losses_and_exports(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert "Losses: D loss 1.100, G loss 0.700" in reply.text
    assert "Last checkpoint: 70.0 kimg, 3 min ago" in reply.text
    assert "Last export: step 1100, 70.0 kimg" in reply.text
    assert "Served by the bot: step 1200" in reply.text


async def test_train_status_shows_last_write(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert re.search(r"Trainer last wrote its status 2\d s ago\.", reply.text)  # 20 s, plus the test's own time


async def test_train_status_attaches_sample_and_curve(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert [file.filename for file in reply.files] == ["fakes000070.png", "loss-curve.png"]
    assert all(file.data.startswith(PNG) for file in reply.files)


async def test_train_status_deferred_ephemerally(tmp_path):
    write_status(tmp_path)
    reply, defer = await train_status(tmp_path)
    assert defer.calls == [True]
    assert reply.ephemeral is True


async def test_train_status_fresh_is_alive(tmp_path):
    write_status(tmp_path)
    reply, _ = await train_status(tmp_path)
    assert "looks dead" not in reply.text


async def test_train_status_stale_looks_dead(tmp_path):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    write_status(tmp_path, updated=iso(old))
    reply, _ = await train_status(tmp_path, stale_seconds=600)
    assert "looks dead. The trainer has not written its status for 3 h" in reply.text


async def test_train_status_exited_pid_looks_dead(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    write_status(tmp_path, pid=process.pid, host=socket.gethostname())
    reply, _ = await train_status(tmp_path)
    assert f"The trainer process {process.pid} is no longer running" in reply.text


async def test_train_status_finished_is_not_dead(tmp_path):
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    write_status(tmp_path, state="finished", updated=iso(old))
    reply, _ = await train_status(tmp_path)
    assert "looks dead" not in reply.text


async def test_train_status_skips_non_png_sample(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not an image")
    write_status(tmp_path, last_sample={"path": str(secret), "kimg": 1.0})
    reply, _ = await train_status(tmp_path)
    assert "secret.txt" not in [file.filename for file in reply.files]
    assert "is not a PNG file" in reply.text


async def test_train_status_missing_sample(tmp_path):
    write_status(tmp_path, last_sample={"path": str(tmp_path / "gone.png"), "kimg": 1.0})
    reply, _ = await train_status(tmp_path)
    assert "The newest sample grid gone.png is missing." in reply.text


async def test_train_status_corrupt_file(tmp_path):
    (tmp_path / "status.json").write_text("{not json")
    reply, _ = await train_status(tmp_path)
    assert "is unreadable" in reply.text
    assert reply.ephemeral is True


async def test_train_status_shows_trainer_error(tmp_path):
    write_status(tmp_path, state="failed", error="NaN in the discriminator loss at step 1200")
    reply, _ = await train_status(tmp_path)
    assert "Error: NaN in the discriminator loss at step 1200" in reply.text


@pytest.mark.parametrize("eta", [float("inf"), float("nan")])
async def test_train_status_eta_not_finite(tmp_path, eta):
    write_status(tmp_path, eta_seconds=eta)
    reply, _ = await train_status(tmp_path)
    assert "Speed: 85.1 img/s, time to go unknown" in reply.text


async def test_train_status_total_kimg_infinite(tmp_path):
    write_status(tmp_path, total_kimg=float("inf"))
    reply, _ = await train_status(tmp_path)
    assert "Progress: 76.8 of unknown kimg, step 1200" in reply.text


async def test_train_status_huge_numbers(tmp_path):
    write_status(tmp_path, kimg=1e308, total_kimg=1e-308, img_per_sec=float("nan"), step=10**400)
    reply, _ = await train_status(tmp_path)
    assert "Progress: 1e+308 of 1e-308 kimg (100.0 %), step unknown" in reply.text
    assert "Speed: unknown img/s" in reply.text


async def test_train_status_last_step_past_the_total(tmp_path):
    write_status(tmp_path, state="finished", kimg=1.024, total_kimg=1.0, step=16)
    reply, _ = await train_status(tmp_path)
    assert "Progress: 1.0 of 1 kimg (100.0 %), step 16" in reply.text


async def test_train_status_losses_not_finite(tmp_path):
    write_status(tmp_path, losses={"loss_d": float("nan"), "loss_g": -1e308})
    reply, _ = await train_status(tmp_path)
    assert "Losses: D loss unknown, G loss -1e+308" in reply.text


async def test_train_status_loss_names_readable(tmp_path):
    write_status(tmp_path, losses={"loss_d": 1.1, "loss_g": 0.7, "real_score": 0.5, "fake_score": -0.4, "loss_r1": 0.01})
    reply, _ = await train_status(tmp_path)
    assert "Losses: D loss 1.100, G loss 0.700, D(real) 0.500, D(fake) -0.400, loss r1 0.010" in reply.text


async def test_train_status_losses_fixed_order(tmp_path):
    # The trainer writes status.json with sorted keys; the reply keeps the usual order.
    write_status(tmp_path, losses=dict(sorted({"loss_d": 1.1, "loss_g": 0.7, "real_score": 0.5, "fake_score": -0.4, "loss_r1": 0.01}.items())))
    reply, _ = await train_status(tmp_path)
    assert "Losses: D loss 1.100, G loss 0.700, D(real) 0.500, D(fake) -0.400, loss r1 0.010" in reply.text


async def test_train_status_curve_with_absurd_history(tmp_path):
    history = [
        {"kimg": 1.0, "loss_d": 1e308, "loss_g": 0.5},
        {"kimg": 2.0, "loss_d": -1e308, "loss_g": float("nan")},
        {"kimg": 3.0, "loss_d": 1.2, "loss_g": 0.6},
        {"kimg": float("inf"), "loss_d": 1.0, "loss_g": 0.6},
        {"kimg": 4.0, "loss_d": 1.1, "loss_g": 0.7},
    ]
    write_status(tmp_path, loss_history=history)
    reply, _ = await train_status(tmp_path)
    assert [file.filename for file in reply.files] == ["fakes000070.png", "loss-curve.png"]


def test_loss_history_drops_unplottable_values():
    status = {
        "loss_history": [
            {"kimg": 1.0, "loss_d": 1e308, "loss_g": 0.5},
            {"kimg": 2.0, "loss_d": float("nan"), "loss_g": float("-inf")},
            {"kimg": float("nan"), "loss_d": 1.0},
            {"kimg": 3.0, "loss_d": 1.2, "loss_g": True},
            "not a point",
        ]
    }
    assert loss_history(status) == [{"kimg": 1.0, "loss_g": 0.5}, {"kimg": 3.0, "loss_d": 1.2}]


async def test_train_status_huge_pid(tmp_path):
    write_status(tmp_path, pid=2**70, host=socket.gethostname())
    reply, _ = await train_status(tmp_path)
    assert "The trainer process 1180591620717411303424 is no longer running" in reply.text


async def test_train_status_huge_integer_file(tmp_path):
    (tmp_path / "status.json").write_text('{"step": ' + "1" * 5000 + "}")
    reply, _ = await train_status(tmp_path)
    assert "is unreadable" in reply.text


async def test_train_status_relative_sample_path(tmp_path):
    write_status(tmp_path, last_sample={"path": "samples/fakes000070.png", "kimg": 70.0})
    reply, _ = await train_status(tmp_path)
    assert reply.files[0].filename == "fakes000070.png"
    assert reply.files[0].data == (tmp_path / "samples" / "fakes000070.png").read_bytes()


async def test_train_status_relative_sample_missing(tmp_path):
    write_status(tmp_path, last_sample={"path": "samples/gone.png", "kimg": 70.0})
    reply, _ = await train_status(tmp_path)
    assert "The newest sample grid samples/gone.png is missing." in reply.text


async def test_train_status_absolute_sample_kept(tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "old-run" / "samples"
    run_dir.mkdir()
    elsewhere.mkdir(parents=True)
    png = render_grid(StandInService().generate(count=1, seed=2).images, size=32)
    (elsewhere / "fakes000010.png").write_bytes(png)
    write_status(run_dir, last_sample={"path": str(elsewhere / "fakes000010.png"), "kimg": 10.0})
    reply, _ = await train_status(run_dir)
    assert reply.files[0].data == png


async def test_train_status_relative_paths_shown(tmp_path):
    write_status(
        tmp_path,
        last_checkpoint={"path": "checkpoints/ckpt-7", "kimg": 70.0},
        last_export={"path": "exports/generator-000070", "kimg": 70.0, "step": 1100},
    )
    reply, _ = await train_status(tmp_path)
    assert "Last checkpoint: 70.0 kimg (`checkpoints/ckpt-7`)" in reply.text
    assert "Last export: step 1100, 70.0 kimg (`exports/generator-000070`)" in reply.text


async def test_train_status_absolute_paths_shown_relative(tmp_path):
    write_status(
        tmp_path,
        last_checkpoint={"path": str(tmp_path / "checkpoints" / "ckpt-7"), "kimg": 70.0},
        last_export={"path": str(tmp_path / "exports" / "generator-000070"), "kimg": 70.0, "step": 1100},
    )
    reply, _ = await train_status(tmp_path)
    assert "(`checkpoints/ckpt-7`)" in reply.text
    assert "(`exports/generator-000070`)" in reply.text
    assert str(tmp_path) not in reply.text


async def test_train_status_names_configured_run(tmp_path):
    run_dir = tmp_path / "moved-run"
    run_dir.mkdir()
    status = write_status(run_dir)
    status["run_dir"] = "/elsewhere/original-run"
    (run_dir / "status.json").write_text(json.dumps(status))
    reply, _ = await train_status(run_dir)
    assert reply.text.startswith("**Training run `moved-run`**")


def test_liveness_live_pid_same_host():
    now = dt.datetime.now(dt.timezone.utc)
    status = {"state": "running", "pid": subprocess.os.getpid(), "host": socket.gethostname(), "updated": iso(now)}
    assert check_liveness(status, now, 600).dead is False


def test_liveness_missing_updated():
    status = {"state": "running", "host": "elsewhere.example"}
    assert check_liveness(status, dt.datetime.now(dt.timezone.utc), 600).dead is True


@pytest.mark.parametrize(
    "seconds, text",
    [
        (45, "45 s"),
        (720, "12 min"),
        (11100, "3 h 5 min"),
        (187200, "2 d 4 h"),
        (float("inf"), "unknown"),
        (float("nan"), "unknown"),
        (1e308, "more than 99999 d"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_served_model_fixture_step():
    assert served_model(5).step == 5
