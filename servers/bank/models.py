"""The bank's tables: customers, accounts, transactions, cards, payees, transfers, disputes.

Dates are ISO strings (``YYYY-MM-DD``) and money is integer cents. Columns that
hold one of a few values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Customer(Base, table=True):
    """A person banking with Harbourline; KYC must be verified for payees and new accounts."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("kyc_status IN ('pending', 'verified', 'rejected')", name="kyc_status_known"),
        CheckConstraint(
            "kyc_document IS NULL OR kyc_document IN ('passport', 'drivers_license', 'national_id')",
            name="kyc_document_known",
        ),
    )
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    phone: str
    date_of_birth: str
    kyc_status: str = "pending"  # pending | verified | rejected
    kyc_document: str | None = None  # passport | drivers_license | national_id
    kyc_verified_on: str | None = None
    joined: str


class Account(Base, table=True):
    """A checking or savings account; the balance is the sum of its ledger."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("account_type IN ('checking', 'savings')", name="account_type_known"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="account_status_known"),
        CheckConstraint("overdraft_limit_cents >= 0", name="overdraft_not_negative"),
    )
    id: int = Field(primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    number: str = Field(unique=True)  # CHK-20001, SAV-30001
    account_type: str  # checking | savings
    nickname: str | None = None
    status: str = "active"  # active | frozen | closed
    balance_cents: int = 0
    overdraft_limit_cents: int = 0
    opened: str
    closed: str | None = None


class Transaction(Base, table=True):
    """One ledger entry: positive amounts credit the account, negative ones debit it."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'card_purchase', 'transfer_in', 'transfer_out', 'fee', 'refund')",
            name="transaction_kind_known",
        ),
    )
    id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    posted: str
    kind: str
    amount_cents: int
    description: str
    balance_after_cents: int
    transfer_id: int | None = Field(default=None, foreign_key="transfers.id")


class Card(Base, table=True):
    """A debit card on an account, known to customers by its last four digits."""

    __tablename__ = "cards"
    __table_args__ = (CheckConstraint("status IN ('active', 'frozen', 'lost', 'cancelled')", name="card_status_known"),)
    id: int = Field(primary_key=True)
    account_id: int = Field(foreign_key="accounts.id")
    last4: str = Field(unique=True)
    status: str = "active"  # active | frozen | lost | cancelled
    daily_limit_cents: int
    issued: str
    expires: str


class Payee(Base, table=True):
    """An external account a customer saved to send transfers to."""

    __tablename__ = "payees"
    id: int = Field(primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    name: str
    bank_name: str
    account_number: str
    added: str


class Transfer(Base, table=True):
    """Money leaving an account: to another Harbourline account or to a payee, now or on a date."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'completed', 'cancelled')", name="transfer_status_known"),
        CheckConstraint("amount_cents > 0", name="transfer_amount_positive"),
    )
    id: int = Field(primary_key=True)
    from_account_id: int = Field(foreign_key="accounts.id")
    to_account_id: int | None = Field(default=None, foreign_key="accounts.id")
    payee_id: int | None = Field(default=None, foreign_key="payees.id")
    amount_cents: int
    memo: str | None = None
    scheduled_for: str  # the date it moves (today for an immediate transfer)
    status: str  # scheduled | completed | cancelled
    created: str


class Dispute(Base, table=True):
    """A customer's dispute of a debit on their account."""

    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(
            "reason IN ('unauthorized', 'duplicate', 'incorrect_amount', 'not_received')", name="dispute_reason_known"
        ),
        CheckConstraint("status IN ('open', 'refunded', 'rejected')", name="dispute_status_known"),
    )
    id: int = Field(primary_key=True)
    transaction_id: int = Field(foreign_key="transactions.id")
    customer_id: int = Field(foreign_key="customers.id")
    reason: str
    amount_cents: int
    status: str = "open"  # open | refunded | rejected
    opened: str
