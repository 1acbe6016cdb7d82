"""What trains: the booster adapters (one per library, behind one registry), the linear counterparts,
and one trial run on every split with what it measures."""
