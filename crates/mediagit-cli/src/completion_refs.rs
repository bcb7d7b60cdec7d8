//! Branch and tag names completed from the repository at hand: clap_complete's
//! scripts know the commands and options only, so bash's and fish's get a
//! few lines appended, and zsh's main function is wrapped, to ask
//! `mediagit __complete-refs [branches|tags]` (hidden) for the names.
//!
//! The names come from a repository that may be hostile (a clone copies
//! every branch and tag): no script ever lets the shell expand them
//! (`compgen -W` would run a `$(...)` inside a name); bash quotes each one
//! with `printf %q`, zsh's `compadd` and fish's `complete -a` take them as
//! literal words.

/// Commands whose first argument is a revision.
const REV_COMMANDS: &str =
    "switch checkout log show diff verify ls-tree merge rebase cherry-pick revert reset";

/// clap_complete's `script` for `shell`, with the names added where the
/// shell allows.
pub fn complete_refs(shell: clap_complete::Shell, script: String) -> String {
    match shell {
        clap_complete::Shell::Zsh => zsh(script),
        clap_complete::Shell::Bash => script + &bash(),
        clap_complete::Shell::Fish => script + &fish(),
        _ => script,
    }
}

fn bash() -> String {
    format!(
        r#"
# Branch and tag names (mediagit __complete-refs) for commands that take a
# revision, branches for `branch delete/rename`, tags for `tag delete`.
# The names are never expanded by the shell: each is matched as text and
# quoted with printf %q.
_mediagit_refs() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd= sub= which= i d
    local -a dir=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -C) d="${{COMP_WORDS[i+1]}}"; dir=(-C "${{d/#\~/$HOME}}"); ((i++)) ;;
            --color) [[ ${{COMP_WORDS[i+1]}} == = ]] && ((i++)); ((i++)) ;;
            --) [[ -n $cmd ]] && {{ _mediagit "$@"; return; }} ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd="${{COMP_WORDS[i]}}"; elif [[ -z $sub ]]; then sub="${{COMP_WORDS[i]}}"; fi ;;
        esac
    done
    case " {REV_COMMANDS} " in *" $cmd "*) [[ -n $cmd ]] && which=all ;; esac
    case "$cmd $sub" in
        "branch delete"|"branch rename") which=branches ;;
        "tag delete") which=tags ;;
    esac
    if [[ -n $which && $cur != -* ]]; then
        local r
        local -a names=()
        mapfile -t names < <(mediagit "${{dir[@]}}" __complete-refs "$which" 2>/dev/null)
        COMPREPLY=()
        for r in "${{names[@]}}"; do
            [[ $r == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$r")")
        done
        [[ ${{#COMPREPLY[@]}} -gt 0 ]] && return 0
    fi
    _mediagit "$@"
}}
complete -F _mediagit_refs -o bashdefault -o default mediagit
"#
    )
}

fn fish() -> String {
    format!(
        r#"
# Branch and tag names (mediagit __complete-refs), from the repository -C
# names if given; fish takes each line as a literal word.
function __mediagit_refs
    set -l tokens (commandline -opc)
    set -l dir
    set -l i 2
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case -C
                set i (math $i + 1)
                set dir -C (string replace -r '^~' $HOME -- $tokens[$i])
            case --color
                set i (math $i + 1)
        end
        set i (math $i + 1)
    end
    mediagit $dir __complete-refs $argv 2>/dev/null
end
complete -c mediagit -n '__fish_seen_subcommand_from {REV_COMMANDS}' -f -a '(__mediagit_refs all)'
complete -c mediagit -n '__fish_seen_subcommand_from branch; and __fish_seen_subcommand_from delete rename' -f -a '(__mediagit_refs branches)'
complete -c mediagit -n '__fish_seen_subcommand_from tag; and __fish_seen_subcommand_from delete' -f -a '(__mediagit_refs tags)'
"#
    )
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
# revision, branches for `branch delete/rename`, tags for `tag delete`
# (compadd quotes them: a name is never expanded).
_mediagit() {{
    local i cmd= sub= which=
    local -a dir
    for ((i = 2; i < CURRENT; i++)); do
        case $words[i] in
            -C) dir=(-C "${{words[i+1]/#\~/$HOME}}"); ((i++)) ;;
            --color) ((i++)) ;;
            --) [[ -n $cmd ]] && {{ _mediagit_clap "$@"; return }} ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$words[i]; elif [[ -z $sub ]]; then sub=$words[i]; fi ;;
        esac
    done
    [[ -n $cmd && " {REV_COMMANDS} " == *" $cmd "* ]] && which=all
    case "$cmd $sub" in
        "branch delete"|"branch rename") which=branches ;;
        "tag delete") which=tags ;;
    esac
    if [[ -n $which && $PREFIX != -* ]]; then
        local -a refs
        refs=(${{(f)"$(mediagit $dir __complete-refs $which 2>/dev/null)"}})
        if (( $#refs )); then
            compadd -a refs && return 0
        fi
    fi
    _mediagit_clap "$@"
}}

{tail}"#
    )
}
