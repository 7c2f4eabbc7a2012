"""Reference data every service uses (the dated GB/T 2260 region snapshot)."""
