"""The one state model of vehicles and devices: what every page and the API show."""
