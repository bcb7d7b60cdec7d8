//! Branch and tag names completed from the repository at hand: clap_complete's
//! scripts know the commands and options only, so bash's and fish's get a
//! few lines appended, and zsh's main function is wrapped, to ask
//! `mediagit __complete-refs` (hidden) for the names.

/// Commands whose first argument is a revision.
const REV_COMMANDS: &str = "switch checkout log show diff verify ls-tree";

/// clap_complete's `script` for `shell`, with the names added where the
/// shell allows.
pub fn complete_refs(shell: clap_complete::Shell, script: String) -> String {
    if shell == clap_complete::Shell::Zsh {
        return zsh(script);
    }
    match extra(shell) {
        Some(more) => script + &more,
        None => script,
    }
}

/// zsh: clap's `_mediagit` becomes `_mediagit_clap`, called by a
/// `_mediagit` that offers the names first where a revision goes. The
/// file stays an autoloadable `#compdef` function.
fn zsh(script: String) -> String {
    const TRAILER: &str = "if [ \"$funcstack[1]\" = \"_mediagit\" ]; then";
    let Some(at) = script.find(TRAILER) else {
        return script;
    };
    let (head, tail) = script.split_at(at);
    let head = head.replacen("\n_mediagit() {\n", "\n_mediagit_clap() {\n", 1);
    format!(
        r#"{head}# Branch and tag names (mediagit __complete-refs) for commands that take a
# revision, and for `branch delete/rename` and `tag delete`.
_mediagit() {{
    local i cmd= sub=
    local -a dir
    for ((i = 2; i < CURRENT; i++)); do
        case $words[i] in
            -C) dir=(-C $words[i+1]); ((i++)) ;;
            --) [[ -n $cmd ]] && {{ _mediagit_clap "$@"; return }} ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$words[i]; elif [[ -z $sub ]]; then sub=$words[i]; fi ;;
        esac
    done
    local want=
    [[ -n $cmd && " {REV_COMMANDS} " == *" $cmd "* ]] && want=1
    case "$cmd $sub" in "branch delete"|"branch rename"|"tag delete") want=1 ;; esac
    if [[ -n $want && $PREFIX != -* ]]; then
        local -a refs
        refs=(${{(f)"$(mediagit $dir __complete-refs 2>/dev/null)"}})
        if (( $#refs )); then
            compadd -a refs && return 0
        fi
    fi
    _mediagit_clap "$@"
}}

{tail}"#
    )
}

/// Lines appended to clap_complete's script for `shell`, if any.
fn extra(shell: clap_complete::Shell) -> Option<String> {
    match shell {
        clap_complete::Shell::Bash => Some(format!(
            r#"
# Branch and tag names (mediagit __complete-refs) for commands that take a
# revision, and for `branch delete/rename` and `tag delete`.
_mediagit_refs() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd= sub= dir=() i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -C) dir=(-C "${{COMP_WORDS[i+1]}}"); ((i++)) ;;
            --) [[ -n $cmd ]] && {{ _mediagit "$@"; return; }} ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd="${{COMP_WORDS[i]}}"; elif [[ -z $sub ]]; then sub="${{COMP_WORDS[i]}}"; fi ;;
        esac
    done
    local want=
    case " {REV_COMMANDS} " in *" $cmd "*) want=1 ;; esac
    case "$cmd $sub" in "branch delete"|"branch rename"|"tag delete") want=1 ;; esac
    if [[ -n $want && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(mediagit "${{dir[@]}}" __complete-refs 2>/dev/null)" -- "$cur"))
        [[ ${{#COMPREPLY[@]}} -gt 0 ]] && return 0
    fi
    _mediagit "$@"
}}
complete -F _mediagit_refs -o bashdefault -o default mediagit
"#
        )),
        clap_complete::Shell::Fish => Some(format!(
            r#"
# Branch and tag names (mediagit __complete-refs).
complete -c mediagit -n '__fish_seen_subcommand_from {REV_COMMANDS}' -f -a '(mediagit __complete-refs 2>/dev/null)'
complete -c mediagit -n '__fish_seen_subcommand_from branch tag; and __fish_seen_subcommand_from delete rename' -f -a '(mediagit __complete-refs 2>/dev/null)'
"#
        )),
        _ => None,
    }
}
