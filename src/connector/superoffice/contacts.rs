//! Contacts for a whole rank: persons of the companies where an associate is "our contact"
//! (the Person archive's `personAssociateId`, the company's our contact), one query for the
//! rank. A person changes when its card does (`personUpdatedDate`), and when its company does
//! (renamed, or given to another associate: the SimpleContact archive's `updatedDate`); the
//! persons of a changed company are listed again (`contactId eq N`). Deletions come from the
//! travel log (table 6); persons deleted in the user interface are soft-deleted and not
//! logged, and persons leaving an associate's scope show no change there: the id-set
//! comparison ([`CrmConnector::ids_in_window`](crate::connector::CrmConnector)) finds both.

use std::collections::{BTreeMap, BTreeSet};

use super::cursor::{ContactCursor, Feed, ITEM_LAG};
use super::feed::{TABLE_PERSON, round_of, server_time};
use super::query::{self, ListQuery};
use super::{SuperOfficeClient, by_associate, fetch_all, time};
use crate::connector::model::{CrmId, Cursor, Observed};
use crate::connector::{ConnectorError, RankChanges};

const PERSON_SELECT: &str = "personId,personAssociateId,personUpdatedDate";

impl SuperOfficeClient {
    fn scope_persons(&self, associates: &[u32]) -> ListQuery {
        ListQuery::new("Person", PERSON_SELECT, "personId")
            .associates("personAssociateId", associates)
            .top(self.options.page_size)
    }

    fn rank_companies(&self, associates: &[u32]) -> ListQuery {
        ListQuery::new("Contact", "contactId,associateId,updatedDate", "contactId")
            .associates("associateId", associates)
            .top(self.options.page_size)
    }

    /// Reads persons in full and attributes each to its company's our contact, if that is
    /// one of `associates` (the list row's value when the card has none).
    async fn fetch_persons(
        &self,
        rows: Vec<(u32, Option<u32>)>,
        associates: &BTreeSet<u32>,
    ) -> Result<Vec<(u32, Observed<CrmId>)>, ConnectorError> {
        let listed: BTreeMap<u32, Option<u32>> = rows.into_iter().collect();
        let ids: Vec<u32> = listed.keys().copied().collect();
        fetch_all(ids, self.options.fetch_concurrency, |id| {
            let listed_owner = listed.get(&id).copied().flatten();
            async move {
                let (observed, person) = match self.read_person(CrmId(id)).await {
                    Ok(Some(found)) => found,
                    Ok(None) => return Ok(None),
                    // One unreadable card must not hold up the rank.
                    Err(ConnectorError::Item { item, what, .. }) => {
                        tracing::warn!(item, what, "SuperOffice person skipped");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                let owner = person.our_contact.or(listed_owner);
                Ok(owner
                    .filter(|o| associates.contains(o))
                    .map(|o| (o, observed)))
            }
        })
        .await
    }

    pub(crate) async fn contact_changes(
        &self,
        associates: &[u32],
        cursor: Option<&Cursor>,
    ) -> Result<RankChanges, ConnectorError> {
        let set: BTreeSet<u32> = associates.iter().copied().collect();
        let Some(previous) = cursor.and_then(ContactCursor::decode) else {
            if cursor.is_some() {
                tracing::warn!("unreadable SuperOffice contact cursor; listing everything again");
            }
            return self.contact_listing(associates, &set).await;
        };
        // Persons whose card changed.
        let mut q = self.scope_persons(associates);
        if let Some(since) = previous.persons.since {
            q = q.filter(format!(
                "personUpdatedDate afterTime '{}'",
                time::literal(since)
            ));
        }
        let listings = self.list(&q).await?;
        let person_round = round_of(&listings, "personId", "personUpdatedDate", None);
        let mut wanted: Vec<(u32, Option<u32>)> = listings
            .iter()
            .flat_map(|l| l.rows.iter())
            .filter(|row| {
                match (
                    query::number(row, "personId"),
                    query::instant(row, "personUpdatedDate"),
                ) {
                    (Some(id), Some(at)) => previous.persons.is_new(id, at),
                    _ => false,
                }
            })
            .filter_map(|row| {
                Some((
                    query::id(row, "personId")?,
                    query::id(row, "personAssociateId"),
                ))
            })
            .collect();
        // Companies that changed: all their persons may look different now.
        let mut q = self.rank_companies(associates);
        if let Some(since) = previous.companies.since {
            q = q.filter(format!("updatedDate afterTime '{}'", time::literal(since)));
        }
        let company_listings = self.list(&q).await?;
        let company_round = round_of(&company_listings, "contactId", "updatedDate", None);
        let companies: BTreeSet<u32> = company_round
            .rows
            .iter()
            .filter(|(id, at)| previous.companies.is_new(*id, *at))
            .filter_map(|(id, _)| u32::try_from(*id).ok())
            .collect();
        for company in companies {
            let q = ListQuery::new("Person", PERSON_SELECT, "personId")
                .filter(format!("contactId eq {company}"))
                .top(self.options.page_size);
            for listing in self.list(&q).await? {
                wanted.extend(listing.rows.iter().filter_map(|row| {
                    Some((
                        query::id(row, "personId")?,
                        query::id(row, "personAssociateId"),
                    ))
                }));
            }
        }
        let changed = self.fetch_persons(wanted, &set).await?;
        let (deleted, log) = self
            .deleted_since(
                TABLE_PERSON,
                &previous.log,
                crate::connector::model::Kind::Contact,
            )
            .await?;
        let mut person_round = person_round;
        person_round
            .rows
            .extend(changed.iter().map(|(_, o)| (u64::from(o.id.0), o.modified)));
        Ok(RankChanges {
            by_associate: by_associate(changed),
            deleted,
            cursor: ContactCursor::new(
                previous.persons.advance(&person_round, ITEM_LAG),
                previous.companies.advance(&company_round, ITEM_LAG),
                log,
            )
            .encode(),
            full: false,
        })
    }

    /// Without a cursor: every person in the rank's scope, and a cursor from now on.
    async fn contact_listing(
        &self,
        associates: &[u32],
        set: &BTreeSet<u32>,
    ) -> Result<RankChanges, ConnectorError> {
        let listings = self.list(&self.scope_persons(associates)).await?;
        let mut round = round_of(&listings, "personId", "personUpdatedDate", None);
        let log = self.log_start(server_time(&listings)).await?;
        let rows: Vec<(u32, Option<u32>)> = listings
            .iter()
            .flat_map(|l| l.rows.iter())
            .filter_map(|row| {
                Some((
                    query::id(row, "personId")?,
                    query::id(row, "personAssociateId"),
                ))
            })
            .collect();
        let persons = self.fetch_persons(rows, set).await?;
        round
            .rows
            .extend(persons.iter().map(|(_, o)| (u64::from(o.id.0), o.modified)));
        // The rank's companies as they are now, so that the next round does not take the
        // recently changed ones for changes.
        let company_listings = self.list(&self.rank_companies(associates)).await?;
        let companies = Feed::default().advance(
            &round_of(&company_listings, "contactId", "updatedDate", None),
            ITEM_LAG,
        );
        Ok(RankChanges {
            by_associate: by_associate(persons),
            deleted: Vec::new(),
            cursor: ContactCursor::new(Feed::default().advance(&round, ITEM_LAG), companies, log)
                .encode(),
            full: true,
        })
    }

    /// The persons in each associate's scope now.
    pub(crate) async fn contact_ids(
        &self,
        associates: &[u32],
    ) -> Result<BTreeMap<u32, Vec<CrmId>>, ConnectorError> {
        let q = ListQuery::new("Person", "personId,personAssociateId", "personId")
            .associates("personAssociateId", associates)
            .top(self.options.page_size);
        let mut out: BTreeMap<u32, Vec<CrmId>> =
            associates.iter().map(|a| (*a, Vec::new())).collect();
        for listing in self.list(&q).await? {
            for row in listing.rows {
                if let (Some(id), Some(owner)) = (
                    query::id(&row, "personId"),
                    query::id(&row, "personAssociateId"),
                ) && let Some(ids) = out.get_mut(&owner)
                {
                    ids.push(CrmId(id));
                }
            }
        }
        Ok(out)
    }
}
