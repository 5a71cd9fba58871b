"""The actions' access to the progress store: a database problem never breaks a turn.

The store itself keeps writes in a local queue and reads the last known state while its
database is down (``infra/progress_store.py``); what still fails here (the queue cannot be
written, an invalid id) is logged without learner data and the turn goes on.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Text

from infra.progress_store import LearnerProfile, ProgressStoreError, get_store
from core.types import Progress

logger = logging.getLogger(__name__)
_ERRORS = (ProgressStoreError, ValueError)


async def load(learner_id: Text, module: Text) -> Progress:
    try:
        return await get_store().load(learner_id, module)
    except _ERRORS as exc:
        logger.warning("progress load failed for module %s: %s", module, exc)
        return Progress()


async def save(learner_id: Text, module: Text, progress: Progress) -> None:
    try:
        await get_store().save(learner_id, module, progress)
    except _ERRORS as exc:
        logger.warning("progress save failed for module %s: %s", module, exc)


async def summary(learner_id: Text) -> Optional[Dict[Text, Progress]]:
    """Progress per module; ``None`` when it cannot be known now (never "not started")."""
    try:
        return await get_store().summary(learner_id)
    except _ERRORS as exc:
        logger.warning("progress summary failed: %s", exc)
        return None


async def load_profile(learner_id: Text) -> Optional[LearnerProfile]:
    try:
        return await get_store().load_profile(learner_id)
    except _ERRORS as exc:
        logger.warning("profile load failed: %s", exc)
        return None


async def save_profile(learner_id: Text, name: Optional[Text] = None, language: Optional[Text] = None) -> None:
    try:
        await get_store().save_profile(learner_id, name=name, language=language)
    except _ERRORS as exc:
        logger.warning("profile save failed: %s", exc)
