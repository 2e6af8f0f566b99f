"""The ground floor: what every other package may use, with no torch and no store.

errors       UserError: a one-line message saying what to do
settings     every SSLVIZ_* environment variable, read in one place
workspace    where everything lives on disk (``$SSLVIZ_HOME``) and the server roots
atomic       writes that readers see whole or not at all (unique temp names, fsync, rename,
             the umask's mode); an unwritable target is one UserError
processes    is a pid alive and ours; children that die with their parent
devices      cpu / cuda / mps resolution
liveness     Cancelled and alive(): how long work says "still going" or "stopped"
proportions  intervals for a proportion (a measured accuracy's 95% interval)
"""
