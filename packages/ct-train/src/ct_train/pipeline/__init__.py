"""``ct-train run``: the whole chain from data sources to an evaluated, exported classifier."""
