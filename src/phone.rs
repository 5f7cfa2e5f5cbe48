//! Phone numbers: parsing to E.164, extension stripping, classification and masking.
