/** Sends late_stage_opportunity and closed_won to orglink (see OrglinkNotifier). */
trigger OrglinkOpportunityNotifier on Opportunity (after insert, after update) {
    OrglinkNotifier.onOpportunities((List<Opportunity>) Trigger.new, (Map<Id, Opportunity>) Trigger.oldMap);
}
