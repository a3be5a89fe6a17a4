// Web shells: server-side scripts that run what a request sends.
rule PHP_WebShell_Eval : webshell
{
  meta:
    description = "PHP script evaluating request input"
  strings:
    $eval = /eval\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)/
  condition:
    $eval
}
