//! `mediagit config`: dotted keys over the repository's and the user's
//! settings files, edited in place (comments and order kept), with the
//! precedence environment > repository > user for the identity.
mod common;

use std::path::PathBuf;

use common::*;

fn user_file(env: &Env) -> PathBuf {
    env.root().join("home/.config/mediagit/config.toml")
}

/// A command without the test identity in the environment.
fn anon(env: &Env, args: &[&str]) -> std::process::Output {
    env.cmd(args)
        .env_remove("MEDIAGIT_AUTHOR_NAME")
        .env_remove("MEDIAGIT_AUTHOR_EMAIL")
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn last_author(env: &Env) -> String {
    let log = env.ok(&["--no-pager", "log", "-n", "1"]);
    log.lines()
        .find_map(|l| l.strip_prefix("Author: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn identity_comes_from_the_environment_then_the_repository_then_the_user() {
    let env = Env::new();
    env.write("a.txt", b"1");
    env.ok(&["add", "-A"]);
    // Nobody: refused, and the hint gives the exact commands.
    let o = anon(&env, &["commit", "-m", "one"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.contains("mediagit config --global author.name \"Your Name\"")
            && err.contains("mediagit config --global author.email you@example.com"),
        "{err}"
    );
    // The user's settings.
    assert!(
        anon(&env, &["config", "--global", "author.name", "Ann Global"])
            .status
            .success()
    );
    assert!(anon(
        &env,
        &["config", "--global", "author.email", "ann@global.example"]
    )
    .status
    .success());
    assert!(anon(&env, &["commit", "-m", "one"]).status.success());
    assert_eq!(last_author(&env), "Ann Global <ann@global.example>");
    // The repository's over the user's (the default scope when setting).
    assert!(anon(&env, &["config", "author.name", "Ann Local"])
        .status
        .success());
    env.write("a.txt", b"2");
    env.ok(&["add", "-A"]);
    assert!(anon(&env, &["commit", "-m", "two"]).status.success());
    assert_eq!(last_author(&env), "Ann Local <ann@global.example>");
    let (got, _) = text(&anon(&env, &["config", "author.name"]));
    assert_eq!(got.trim(), "Ann Local");
    let (got, _) = text(&anon(&env, &["config", "--global", "author.name"]));
    assert_eq!(got.trim(), "Ann Global");
    // The environment over both.
    env.write("a.txt", b"3");
    env.ok(&["add", "-A"]);
    env.ok(&["commit", "-m", "three"]);
    assert_eq!(last_author(&env), "Test User <test@example.com>");
    // --unset: the user's value shows through again.
    assert!(anon(&env, &["config", "--unset", "author.name"])
        .status
        .success());
    let (got, _) = text(&anon(&env, &["config", "author.name"]));
    assert_eq!(got.trim(), "Ann Global");
    let o = anon(&env, &["config", "--unset", "author.name"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("is not set"), "{}", text(&o).1);
}

#[test]
fn editing_keeps_comments_and_order_and_list_shows_where_each_setting_is() {
    let env = Env::new();
    let file = user_file(&env);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "# my MediaGit settings\n[core]\npager = \"less -S\"  # wide lines\n\n[safe]\ndirectories = []\n",
    )
    .unwrap();
    env.ok(&["config", "--global", "author.name", "Pat"]);
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(
        after.starts_with("# my MediaGit settings\n[core]\npager = \"less -S\"  # wide lines\n"),
        "{after}"
    );
    assert!(after.contains("[author]\nname = \"Pat\""), "{after}");
    assert!(after.find("[safe]") < after.find("[author]"), "{after}");
    let list = env.ok(&["config", "--list", "--show-origin"]);
    let user = format!("file:{}\t", file.display());
    let repo = format!(
        "file:{}\t",
        env.repo().join(".mediagit/config.toml").display()
    );
    assert!(
        list.contains(&format!("{user}core.pager=less -S")),
        "{list}"
    );
    assert!(list.contains(&format!("{user}author.name=Pat")), "{list}");
    assert!(list.contains(&format!("{repo}format.version=")), "{list}");
    // The user's file comes first (lower precedence).
    assert!(list.find(&user) < list.find(&repo), "{list}");
}

#[test]
fn unknown_keys_and_wrong_places_are_refused_with_what_to_do() {
    let env = Env::new();
    let before = env.repo_state();
    let o = env.cmd(&["config", "autor.name", "x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("unknown setting \"autor.name\""), "{err}");
    assert!(err.contains("did you mean \"author.name\""), "{err}");
    let o = env.cmd(&["config", "core.pager", "less"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("config --global core.pager"),
        "{}",
        text(&o).1
    );
    let o = env.cmd(&["config"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = env.cmd(&["config", "author.email"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("author.email is not set"));
    // Nothing was written anywhere.
    assert_eq!(env.repo_state(), before);
    assert!(!user_file(&env).exists());
}

#[test]
fn edit_opens_the_editor_and_refuses_what_breaks_the_file() {
    let env = Env::new();
    let script = env.root().join("editor.sh");
    // `config --global --edit` with an editor that runs `body` on the file.
    let edit_with = |body: &str| {
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.cmd(&["config", "--global", "--edit"])
            .env("EDITOR", &script)
            .env_remove("VISUAL")
            .output()
            .unwrap()
    };
    let o = edit_with("printf '[author]\\nname = \"Edited\"\\n' >> \"$1\"");
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(
        env.ok(&["config", "--global", "author.name"]).trim(),
        "Edited"
    );
    // An edit that breaks the file: said, with the file named.
    let o = edit_with("printf '[bogus]\\nx = 1\\n' >> \"$1\"");
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("config.toml is not valid now"), "{err}");
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn hostile_and_odd_files_and_values_are_handled_without_harm() {
    let env = Env::new();
    // The user's file is a link (a dotfile manager's): the link stays, the
    // file it points to is changed.
    let real = env.root().join("dotfiles/mediagit.toml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "# managed elsewhere\n").unwrap();
    let file = user_file(&env);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &file).unwrap();
    env.ok(&["config", "--global", "author.name", "Linked"]);
    assert!(std::fs::symlink_metadata(&file)
        .unwrap()
        .file_type()
        .is_symlink());
    let linked = std::fs::read_to_string(&real).unwrap();
    assert!(
        linked.contains("# managed elsewhere") && linked.contains("name = \"Linked\""),
        "{linked}"
    );
    // `author` that is not a table: an error, not a crash; nothing changed.
    std::fs::write(&real, "author = \"x\"\n").unwrap();
    let o = env
        .cmd(&["config", "--global", "author.email", "e@x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o).1);
    assert!(text(&o).1.contains("is not a table"), "{}", text(&o).1);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "author = \"x\"\n");
    std::fs::write(&real, "").unwrap();
    // Values a commit could not record as given.
    for (key, value) in [
        ("author.name", "two\nlines"),
        ("author.name", "Evil <evil@x> Y"),
        ("author.name", "   "),
        ("author.email", "a b@x"),
    ] {
        let o = env.cmd(&["config", key, value]).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{key}={value:?}");
    }
    // A repository whose settings do not parse: `--list` names the file
    // and `--edit` still opens it, to repair it.
    let repo_file = env.repo().join(".mediagit/config.toml");
    let good = std::fs::read_to_string(&repo_file).unwrap();
    std::fs::write(&repo_file, format!("{good}broken = [\n")).unwrap();
    let o = env.cmd(&["config", "--list"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains(".mediagit/config.toml"),
        "{}",
        text(&o).1
    );
    let o = env
        .cmd(&["config", "--edit"])
        .env("EDITOR", "sed -i '$d'")
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(std::fs::read_to_string(&repo_file).unwrap(), good);
    env.ok(&["status"]);
}

/// `core.checkpoint_*` live in the repository's file, as whole numbers the
/// repository's own reader accepts; anything else leaves the file as it was.
#[test]
fn checkpoint_settings_are_the_repositorys_numbers() {
    let env = Env::new();
    let file = env.repo().join(".mediagit/config.toml");
    env.ok(&["config", "core.checkpoint_bytes", "67108864"]);
    env.ok(&["config", "core.checkpoint_seconds", "10"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("checkpoint_bytes = 67108864\n"), "{text}");
    assert!(text.contains("checkpoint_seconds = 10\n"), "{text}");
    assert_eq!(env.ok(&["config", "core.checkpoint_bytes"]), "67108864\n");
    for (value, why) in [
        ("0", "whole number above 0"),
        ("5.5", "whole number above 0"),
        ("ten", "whole number above 0"),
        ("1000", "at least 65536"),
    ] {
        let err = env.fail(&["config", "core.checkpoint_bytes", value]);
        assert!(err.contains(why), "{value}: {err}");
    }
    let err = env.fail(&["config", "--global", "core.checkpoint_seconds", "5"]);
    assert!(err.contains("setting of the repository"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    env.ok(&["config", "compression.level", "9"]);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("level = 9\n"));
    let err = env.fail(&["config", "compression.level", "40"]);
    assert!(err.contains("between 1 and 22"), "{err}");
    // add still works with them (and reads them: a bad one would refuse).
    env.write("a.bin", &[1u8; 100_000]);
    env.ok(&["add", "-A"]);
    env.ok(&["config", "--unset", "core.checkpoint_bytes"]);
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("checkpoint_bytes"));
}

#[test]
fn remotes_and_upstreams_are_settings_by_dotted_key() {
    let env = Env::new();
    env.ok_in(env.root(), &["init", "--bare", "copy.git"]);
    let copy = env.root().join("copy.git");
    // A remote whose name holds a dot, set by key, seen by `remote -v`.
    env.ok(&["config", "remotes.nas.v2.url", copy.to_str().unwrap()]);
    assert_eq!(
        env.ok(&["remote", "-v"]),
        format!("nas.v2\t{}\n", copy.display())
    );
    assert_eq!(
        env.ok(&["config", "remotes.nas.v2.url"]).trim(),
        copy.to_str().unwrap()
    );
    env.ok(&["config", "remotes.nas.v2.token_env", "NAS_TOKEN"]);
    env.ok(&["config", "branches.main.remote", "nas.v2"]);
    env.ok(&["config", "branches.main.merge", "main"]);
    let cfg = std::fs::read_to_string(env.repo().join(".mediagit/config.toml")).unwrap();
    assert!(
        cfg.contains("[remotes.\"nas.v2\"]") || cfg.contains("[remotes.nas.v2]"),
        "{cfg}"
    );
    assert!(cfg.contains("[branches.main]"), "{cfg}");
    // Checked by the file's reader: a token_env that names no variable,
    // a remote name that cannot be one.
    let err = env.fail(&["config", "remotes.nas.v2.token_env", "not a var"]);
    assert!(err.contains("token_env"), "{err}");
    let err = env.fail(&["config", "remotes.a/b.url", "/x"]);
    assert!(err.contains("not a remote name"), "{err}");
    // Unknown leaves get the nearest key.
    let err = env.fail(&["config", "remotes.nas.v2.uri", "/x"]);
    assert!(err.contains("remotes.NAME.url"), "{err}");
    // They are the repository's, never the user's.
    let err = env.fail(&["config", "--global", "remotes.x.url", "/x"]);
    assert!(err.contains("setting of the repository"), "{err}");
    env.ok(&["config", "--unset", "remotes.nas.v2.token_env"]);
    assert!(env
        .fail(&["config", "remotes.nas.v2.token_env"])
        .contains("not set"));
}
