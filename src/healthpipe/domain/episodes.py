"""Episodes: runs of at least MIN_EPISODE_READINGS consecutive abnormal readings of one user
for one vital in one direction (low or high), broken where two consecutive readings are more
than a gap apart (`clinical.EPISODE_GAP_SECONDS`, 2 h). Grouping readings into episodes turns
a storm of alerts into a few events.

A user's readings are taken in time order; a reading that is normal, abnormal in the other
direction (heart rate 45, 95, 45 is no bradycardia episode), or not eligible (a heart-rate
finding during activity below NEWS2 3) breaks the run. An episode states its kind (that of
its most severe reading: a crisis reading inside a longer run of stage 1 or 2 readings makes
it a crisis episode), its worst value ("lowest" for low kinds, "highest" for high ones), its
span and its number of readings.
"""

from __future__ import annotations

MIN_EPISODE_READINGS = 3
