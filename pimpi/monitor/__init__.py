"""`pimpi monitor`: a read-only web page of the cluster's nodes and jobs, served apart from any job.

Rooms: `probe` (what a node says of itself, run on the node), `nodes` (asks every node of
the hostfile, in a background thread), `jobs` (finds and reads the status files jobs
write), `server` (the HTTP server and its rules: read-only, token, no path outside the
folders), `cli` (the command). The page itself is in `assets/`, shipped in the package.
"""
