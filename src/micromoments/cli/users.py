"""`micromoments users add NAME`: an admin account for the web pages (`[server.admin_users]`)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from micromoments.cli._app import app, console, friendly_errors

users_app = typer.Typer(help="Admin accounts for the /app web pages.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def set_admin_user(config_path: Path, name: str, stored: str) -> None:
    """Add or replace `name = "<hash>"` under `[server.admin_users]` in the TOML file (created if
    missing), keeping the rest of the file as it is."""
    from micromoments.errors import ConfigError

    text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    if re.search(r"^\s*admin_users\s*=", text, flags=re.M):
        raise ConfigError("admin_users is written inline under [server]", where=str(config_path),
                          hint=f'add {name} = "{stored}" to it by hand, or turn it into a [server.admin_users] table')
    line = f'{name} = "{stored}"'
    header = re.search(r"^\[server\.admin_users\]\s*$", text, flags=re.M)
    if header is None:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + f"[server.admin_users]\n{line}\n"
    else:
        start = header.end()
        nxt = re.search(r"^\[", text[start:], flags=re.M)
        end = start + nxt.start() if nxt else len(text)
        body = re.sub(rf"^{re.escape(name)}\s*=.*\n?", "", text[start:end], flags=re.M)
        text = text[:start] + "\n" + line + "\n" + body.lstrip("\n") + text[end:]
    config_path.write_text(text, encoding="utf-8")


@users_app.command("add")
@friendly_errors
def add(
    name: str = typer.Argument(..., help="The account name (letters, digits, . _ -)."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The password (prompted for when not given)."),
    config_path: Path = typer.Option(Path("micromoments.toml"), "--config", help="The TOML file to write."),
    print_only: bool = typer.Option(False, "--print", help="Only print the hash line; change no file."),
) -> None:
    """Hash a password (scrypt) and save the account in micromoments.toml; restart `serve` to use it."""
    from micromoments.errors import InputError
    from micromoments.server.pages.auth import hash_password

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise InputError(f"bad account name {name!r}", where="NAME", hint="use letters, digits, '.', '_' or '-'")
    if len(password) < 8:
        raise InputError("the password is shorter than 8 characters", where="--password", hint="choose a longer one")
    stored = hash_password(password)
    if print_only:
        console.print(f'{name} = "{stored}"', highlight=False)
        return
    set_admin_user(config_path, name, stored)
    console.print(f"admin '{name}' saved in {config_path} ([server.admin_users]); restart `micromoments serve`.")
