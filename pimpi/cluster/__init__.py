"""Cluster tooling: hostfiles, the pre-flight doctor, the job launcher, the virtual cluster."""
