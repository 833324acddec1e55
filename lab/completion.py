"""Shell completion: `nfwlab completion bash` writes a bash script made from the CLI's own parser.

The commands, their aliases and each command's options come from the parser, so a new command or option
completes without a change here. What is known here is only which kind of value an argument takes, by its
name (`--topology` and `switch`'s TOPOLOGY: topology names; NODE, `--server`, trace's SOURCE: the nodes of
the lab; `--policy`: the shipped policies; `--name`: the labs of this host); the rest completes file names,
or nothing for numbers and free text.

Node names come from the running lab when TAB is pressed: `nfwlab --name LAB nodes`, with the lab named on
the command line (before or after the command), through the same `nfwlab` the line starts with.
"""
from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable
from pathlib import Path

# The kinds of values, as the script's _nfwlab_values knows them.
TOPOLOGY, NODE, POLICY, LAB, FILE, NOTHING = "topology", "node", "policy", "lab", "file", "none"

# Arguments by dest, or by (command, dest) where the dest alone says too little.
KINDS: dict[str | tuple[str, str], str] = {
    "topology": TOPOLOGY, "diff": TOPOLOGY, "node": NODE, "server": NODE, ("trace", "source"): NODE,
    "name": LAB, "policy": POLICY, ("policy", "files"): POLICY, ("diff", "old"): POLICY, ("diff", "new"): POLICY,
    "domains": NOTHING, "home_net": NOTHING, "dest": NOTHING, "url": NOTHING, "k": NOTHING, "tag": NOTHING,
    "base_image": NOTHING, "vpc_id": NOTHING, "out_name": NOTHING, "flow_id": NOTHING,
}


def _kind(command: str, action: argparse.Action) -> str:
    if action.choices is not None:
        return "words:" + ",".join(str(c) for c in action.choices)
    kind = KINDS.get((command, action.dest)) or KINDS.get(action.dest)
    if kind:
        return kind
    return NOTHING if action.type in (int, float) else FILE


def _commands(top: argparse.ArgumentParser) -> list[tuple[list[str], argparse.ArgumentParser]]:
    """(names, parser) of every command, its aliases after its name."""
    found: dict[int, tuple[list[str], argparse.ArgumentParser]] = {}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.setdefault(id(sub), ([], sub))[0].append(name)
    return list(found.values())


def _options(command: str, p: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Every option of `p`, and `OPTION:KIND` of those that take a value."""
    flags: list[str] = []
    valued: list[str] = []
    for action in p._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flags += action.option_strings
        if action.nargs != 0:
            valued += [f"{flag}:{_kind(command, action)}" for flag in action.option_strings]
    return flags, valued


def _positionals(command: str, p: argparse.ArgumentParser) -> list[str]:
    """The kinds of the positional arguments in order; `*` marks one that takes any number of words, `...`
    one that takes every word after it, options too (exec's command)."""
    out = []
    for action in p._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        mark = "..." if action.nargs == argparse.REMAINDER else "*" if action.nargs in ("*", "+") else ""
        out.append(_kind(command, action) + mark)
    return out


def _words(items: Iterable[str]) -> str:
    return shlex.quote(" ".join(items))


def bash(top: argparse.ArgumentParser, topologies: list[str], policies: list[str], state_root: Path) -> str:
    """The bash completion script for `top` (the nfwlab parser). `policies`: the shipped policies' names, which
    find them from any directory, offered with the files where the user is."""
    global_flags, global_valued = _options("", top)
    cases = []
    names: list[str] = []
    for aliases, sub in _commands(top):
        flags, valued = _options(aliases[0], sub)
        names += aliases
        cases.append(f"    {'|'.join(aliases)}) opts={_words(flags)}; valued={_words(valued)}; "
                     f"pos={_words(_positionals(aliases[0], sub))};;")
    spec = "\n".join(cases)
    return f'''# bash completion for nfwlab, written by `nfwlab completion bash` from its parser.
# Install: source <(nfwlab completion bash)   (e.g. in ~/.bashrc)

_nfwlab_commands={_words(names)}
_nfwlab_global_opts={_words(global_flags)}
_nfwlab_global_valued={_words(global_valued)}
_nfwlab_topologies={_words(topologies)}
_nfwlab_policies={_words(policies)}
_nfwlab_state_root={shlex.quote(str(state_root))}

# A command's options, `OPTION:KIND` of those that take a value, and its positional arguments' kinds.
_nfwlab_spec() {{
  opts="" valued="" pos=""
  case $1 in
{spec}
  esac
}}

# The values of KIND that start with CUR, into COMPREPLY.
_nfwlab_values() {{
  local kind=$1 cur=$2 prog=$3 lab=$4 f
  case $kind in
    topology) COMPREPLY=($(compgen -W "$_nfwlab_topologies" -- "$cur"))
              ((${{#COMPREPLY[@]}})) || COMPREPLY=($(compgen -f -- "$cur"));;
    policy) COMPREPLY=($(compgen -W "$_nfwlab_policies" -- "$cur") $(compgen -f -- "$cur"));;
    node) COMPREPLY=($(compgen -W "$("$prog" --name "$lab" nodes 2>/dev/null)" -- "$cur"));;
    lab) local labs=()
         for f in "$_nfwlab_state_root"/*/lab.json; do [[ -e $f ]] && labs+=("$(basename "$(dirname "$f")")"); done
         COMPREPLY=($(compgen -W "${{labs[*]}}" -- "$cur"));;
    words:*) f=${{kind#words:}}; COMPREPLY=($(compgen -W "${{f//,/ }}" -- "$cur"));;
    file) COMPREPLY=($(compgen -f -- "$cur"));;
  esac
}}

_nfwlab() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev="" prog=${{COMP_WORDS[0]}} lab=default cmd="" opts="" valued=""
  local pos="" n=0 i w kind="" rest=0
  local -a kinds
  COMPREPLY=()
  [[ $cur == "=" ]] && cur=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${{COMP_WORDS[i]}}
    if ((rest)) || [[ $w != -* ]]; then
      if [[ -z $cmd ]]; then cmd=$w; _nfwlab_spec "$cmd"; read -ra kinds <<<"$pos"
      else ((n++)); [[ ${{kinds[n-1]:-}} == *... ]] && rest=1; fi
      continue
    fi
    [[ $w == -- ]] && {{ rest=1; continue; }}
    if [[ " $_nfwlab_global_valued $valued " == *" $w:"* ]]; then  # the option's value: the next word
      ((i + 1 < COMP_CWORD)) || {{ prev=$w; break; }}
      [[ ${{COMP_WORDS[i+1]}} == "=" ]] && ((i++))
      ((i + 1 < COMP_CWORD)) || {{ prev=$w; break; }}
      ((i++))
      [[ $w == --name ]] && lab=${{COMP_WORDS[i]}}
    fi
  done
  if [[ -n $prev ]]; then  # after an option that takes a value
    kind=" $_nfwlab_global_valued $valued "; kind=${{kind#* "$prev":}}; kind=${{kind%% *}}
    _nfwlab_values "$kind" "$cur" "$prog" "$lab"
  elif [[ $cur == -* ]] && ((!rest)); then
    COMPREPLY=($(compgen -W "${{opts:-$_nfwlab_global_opts}}" -- "$cur"))
  elif [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$_nfwlab_commands" -- "$cur"))
  else
    kind=${{kinds[n]:-}}
    ((n >= ${{#kinds[@]}})) && [[ ${{kinds[-1]:-}} == *[*.] ]] && kind=${{kinds[-1]}}
    kind=${{kind%"*"}}
    _nfwlab_values "${{kind%...}}" "$cur" "$prog" "$lab"
  fi
}}

complete -F _nfwlab nfwlab
'''
