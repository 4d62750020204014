"""The slash commands as Discord shows them: names, options, descriptions, permissions.

Each callback only turns the interaction into a Request and hands it to the
client, which runs the shared handler and sends the response. Errors raised here reach
the command tree's error handler.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.handlers import DEFAULT_COUNT, GENERATE_OPTIONS, MAX_COUNT, MAX_SEED
from bot.responder import request_from_interaction

MAX_CHOICES = 25  # Discord's limit on choices of one option


def build_generate_command(class_names: tuple[str, ...]) -> app_commands.Command:
    """Return /generate with the served model's class names (and random) as the choices of `class`."""

    @app_commands.command(name="generate")
    @app_commands.rename(class_name="class")
    @app_commands.describe(class_name=GENERATE_OPTIONS["class"], count=GENERATE_OPTIONS["count"], seed=GENERATE_OPTIONS["seed"])
    async def generate(
        interaction: discord.Interaction,
        class_name: str = "random",
        count: app_commands.Range[int, 1, MAX_COUNT] = DEFAULT_COUNT,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
    ) -> None:
        """Generate a grid of CIFAR-10-style images with the GAN"""
        options = {"class": class_name, "count": count}
        if seed is not None:
            options["seed"] = seed
        await interaction.client.respond(interaction, request_from_interaction(interaction, "generate", options))

    # Choices are fixed when the commands are synced. A model with too many
    # classes gets a free-text option, which the handler checks by name.
    names = list(class_names) + ["random"]
    if len(names) <= MAX_CHOICES:
        generate = app_commands.choices(class_name=[app_commands.Choice(name=name, value=name) for name in names])(generate)
    return generate


@app_commands.command(name="model")
async def model(interaction: discord.Interaction) -> None:
    """Show which model the bot serves: training step, data, metrics, last reload"""
    await interaction.client.respond(interaction, request_from_interaction(interaction, "model", {}))


# Discord hides the group from members without Manage Server; the handler checks again,
# because server admins can change who may use it under Integrations.
@app_commands.default_permissions(manage_guild=True)
class TrainGroup(app_commands.Group, name="train", description="Training run commands for server managers"):
    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction) -> None:
        """Show the training run's progress, losses, newest samples and whether the trainer is alive"""
        await interaction.client.respond(interaction, request_from_interaction(interaction, "train status", {}))


def register_commands(tree: app_commands.CommandTree, class_names: tuple[str, ...]) -> None:
    tree.add_command(build_generate_command(class_names))
    tree.add_command(model)
    tree.add_command(TrainGroup())
