/** Sends became_customer, name_changed and domain_changed to orglink (see OrglinkNotifier). */
trigger OrglinkAccountNotifier on Account (after insert, after update) {
    OrglinkNotifier.onAccounts((List<Account>) Trigger.new, (Map<Id, Account>) Trigger.oldMap);
}
